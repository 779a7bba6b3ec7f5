"""The exact solver's tuning as data: one frozen record passed through every part of the search.

Every number here trades time between parts of branch-and-price (or memory within one part);
none changes what is proven. `ExactOptions.settings` carries it into a solve; the Pricer holds it
for the searches it runs (levels.py, kernel.py, statespace.py) and hands it to the branch-and-
price (bnp.py, dive.py, master.py) and the fleet's search (fleet.py, fleetbnp.py). Two solves in
one process may use different settings; tests and benchmarks pass them instead of patching
module globals. What stays a module constant is part of the model or of an array layout
(oracle.FULL, the kernels' coefficient rows) or a numerical tolerance (EPS, DELTA, TINY, EDGE).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ExactSettings:
    """Tuning of the exact solver (defaults: the tuned values, docs/exact.md)."""

    # -- the solve (solver.py) ---------------------------------------------------------------
    rerun_share: float = 0.2  # of the limit, at least left for the search over single workloads
    # at most this many shareable GPUs in the seed plan: the compact MILP runs first, on half the
    # time left. Off (0) since the state search prices large configurations: branch-and-price alone
    # proved all 44 instances of the committed and fresh sets that ran it (at most 12.1 s), where
    # the MILP first lost 57 s on 7 of them (docs/exact.md, "The compact MILP first, retired")
    few_gpus: int = 0
    # large configurations (large_members below): first fits in random orders seed the master and the
    # incumbent, for at most this share of the limit and this many plans (the LP starts below the
    # seed plan's count instead of sitting on it for dozens of rounds)
    seed_fits_share: float = 0.04
    seed_fits: int = 40
    # of the limit, at most: the search over the sizing's split that seeds the one over every split
    fixed_share: float = 0.25
    split_grid: int = 10  # rate levels k / split_grid of the largest single-GPU rate (splits.py)
    # a split workload's rows rounded (cuts.py) with lam = k / w for k up to this (0: no cut rows),
    # offered below cut_rows master rows and opened once the root's bound is proven below the incumbent
    piece_cuts: int = 1
    cut_rows: int = 150
    # from cut_rows rows (up to lns_rows, where the final phase is neighbourhoods) the same cuts are
    # opened as the final phase starts instead (the root's LP converges past the limit with them),
    # and the LP priced on with them for at most final_cuts_share of the final phase: its dives
    # then round whole pieces. At 200 workloads dives over fractions of pieces ended one GPU above
    # ceil(LP), the last GPUs made of split workloads' remnants no GPU holds together. Replays of
    # eight final phases: 3 proven with, 1 without; whole solves of twenty seeds: 5 proven
    # either way (docs/exact.md, "Whole pieces in the final phase"). False: off
    final_cuts: bool = True
    final_cuts_share: float = 0.1
    seed_share: float = 0.4  # of the time left, at most for the heuristics that seed the master
    pair_seconds: float = 5e-8  # per entry of the pricer's pair table: its allocation alone, at least
    # a warm start (warm.py): of the limit at most, for its proof (the search over configurations
    # holding the changed workload) and a dive from the warm pool before branch-and-price
    warm_search_share: float = 0.25
    # a warm start's branch-and-price (issue 24, item 4): its pool is near the new LP's optimum, so
    # an exhaustive call goes to the state search at once (the set search's set_first sets near
    # the proof threshold never finish at 100 workloads) and returns after warm_exhaustive_share
    # of the limit once it found columns (the LP needs a few of them, then the proof)
    warm_set_first: int = 0
    warm_exhaustive_share: float = 0.01
    # and its exhaustive calls return the columns they meet above 1 (collect_above below), under any
    # policy: the warm LP's tail needs many columns, each call found 1-5 without (docs/exact.md)
    warm_collect: bool = True

    # -- branch-and-price (bnp.py) -----------------------------------------------------------
    exhaustive_columns: int = 150  # columns one exhaustive pricing call returns at most
    exhaustive_share: float = 0.05  # of the time limit: an exhaustive call that found columns returns then
    final_share: float = 0.2  # of the time limit, kept for a last dive, the bound search and the integer master
    final_dive_share: float = 0.5  # of that, for a last dive when ceil(LP) is below the incumbent
    bound_share: float = 0.5  # of what is left then, for the bound search
    # of the time left: the root's LP solved on after a threshold proved its bound below the
    # incumbent (the proof leaves the LP short of its optimum, and the plan's search rounds it).
    # Where configurations are large (large_members) and below large_rows only: at 200 workloads
    # the same plans on four of five fresh seeds and one GPU worse on the fifth; on other families
    # it was not shown to pay (docs/exact.md, "Sixth round")
    converge_share: float = 0.3
    # of the time limit, for the bound search when the root's search ran into the final phase
    final_reserve: float = 0.03
    heuristic_columns: int = 200  # columns one heuristic pricing round returns at most
    beam: int = 400  # numpy heuristic pricing (no numba) keeps the best sets of each size
    heuristic_evaluations: int = 200_000  # sets the truncated compiled search may evaluate per call
    diverse_passes: int = 3  # heuristic pricing passes that leave out the types already crowded
    crowded: int = 8  # columns a type may be in before later passes leave it out
    dive_gain: float = 0.3  # a new dive when the root LP fell this much since the last one
    dive_share: float = 0.3  # of the time left, at most, per dive
    dive_after: float = 0.25  # of the time limit: a dive then (after the start or the last one) even while the LP moves
    dive_mip_seconds: float = 5.0  # the integer master after a dive that found no better plan
    # below the root, a node whose restricted LP is already at most UB - 1 branches as soon as
    # heuristic pricing ends, without the exhaustive call (its bound could not prune the node; at
    # 64 workloads under joint those calls took 0.5-13 s a node, 90 s at a 900 s limit: the
    # soft deadline scales with the limit); False: the exhaustive call as before
    node_skip: bool = True
    # below the root an exhaustive call (its LP above UB - 1) that found columns returns after
    # this share of the limit (the root's exhaustive_share: 6-12 s a node at 120 s under joint)
    node_exhaustive_share: float = 0.01
    enum_columns: int = 50_000  # a node that cannot branch is closed by listing at most this many columns
    enum_evaluations: int = 20_000_000  # sets that listing may evaluate
    # joint (issue 24, item 1; stop 51): a root that cannot branch on a split workload's levels is
    # closed when its LP, solved on by exhaustive pricing at 1 + EPS for up to close_converge_joint
    # of the limit where heuristic pricing cannot prove it solved, leaves a slack UB - 1 - LP of at
    # most close_slack_joint; the listing may then evaluate enum_evaluations_joint sets (to the
    # tree's deadline). Larger slacks are not listed: at 0.02-0.06 the listing met its 50,000
    # columns in 1-4 s on four of five open joint-64 seeds; at 0.0052 it ended in 72 s with 2,211
    # and proved 23 GPUs optimal (mixed 64, seed 27020; open at 420 s before; docs/exact.md)
    close_converge_joint: float = 0.15
    close_slack_joint: float = 0.01
    enum_evaluations_joint: int = 300_000_000
    # few rows (at most close_rows_small: a handful of workloads, some split over many GPUs): the
    # listing is tried at any slack, joint too, and each listing that meets its caps makes the
    # next one enum_growth times wider, up to enum_columns_max columns and enum_evaluations_max
    # sets (a listing is not repeated at the same incumbent and caps). Four high-rate workloads
    # list 75,548 columns at slack 0.98 in 5 s and prove 16 GPUs, where the 50,000-column cap left
    # 17 / 16 after 20 s of repeated listings (docs/exact.md, "Few workloads, many GPUs")
    close_rows_small: int = 12
    enum_growth: int = 4
    enum_columns_max: int = 800_000
    enum_evaluations_max: int = 320_000_000
    # many members per GPU (issue 24): where the seed plan holds at least large_members workloads per
    # GPU on average, the root's heuristic rounds are interrupted every check_period of the limit by
    # a state search at the Farley threshold, for at most check_budget of the limit (the LP tails
    # for minutes there on the heuristic's columns; the state search's are worth far more); a check
    # that found no column doubles the next one's budget, up to check_max_budget (a proof's time)
    large_members: float = 8.0
    check_period: float = 0.01
    check_budget: float = 0.01
    check_max_budget: float = 0.16
    # and a dive step there prices by the state search too, for this share of the limit per round
    # (fresh heavy-tailed rates, two seed sets: 18 of 20 proven against 17 of 20 without; at 200
    # workloads of the paper family, where configurations are small, it cost two GPUs on five
    # fresh instances and is not used: docs/exact.md)
    dive_state: float = 0.005
    # and there the root's exhaustive calls return the sets above 1 they met (collect_above), as
    # under joint
    collect_large: bool = True
    # and there an exhaustive call hands over to the state search after this many sets of the set
    # search (as set_first_large at datacenter sizes), not set_first: with 14 members per GPU its 2
    # million sets took most of each 5-10 s call in the LP's tail and found no column the state
    # search does not (heavy-tailed n84, 200 s trace: the root LP's tail 110 s instead of 144 s)
    set_first_members: int = 200_000
    # and the state search's leaves are leaf_c_members L2 units by leaf_p_members watts (leaf_c and
    # leaf_p were widened to 4 x 32 on the paper family, 2-4 members per GPU), but for a dive's
    # calls (dive_leaf_c, dive_leaf_p): with 16-24 members a leaf of 4 x 32 listed 20,000 sets of
    # which 0.015% fit (a captured tail call of heavy-tailed n100: 150 columns in 4.2 s instead of
    # 21.8 s; a proof call in the same time); a dive's calls at 1 x 8 found fewer columns in their
    # budget (20-70 against 150 on a fresh n100) and the plan came later
    leaf_c_members: float = 1.0
    leaf_p_members: float = 8.0

    # -- dives (dive.py) ---------------------------------------------------------------------
    dive_rounds: int = 6  # pricing rounds per dive step (the pricing is heuristic: the dive needs no proof)
    dive_slack: float = 0.25  # a dive goes on while its LP is below incumbent - 1 + slack (its LP is not converged)
    round_up: float = 0.2  # columns this close to their ceiling are rounded up together
    round_share: int = 30  # and at least one in this many of the fractional columns
    finish_rc: float = 0.05  # the closing MIP keeps columns of reduced cost up to the dive's slack plus this

    # -- the master (master.py) --------------------------------------------------------------
    min_mip_seconds: float = 0.5  # no integer master on less (setting one up took 1 s at 200 workloads)

    # -- pricing (pricing.py) ----------------------------------------------------------------
    kernel: bool = True  # exhaustive pricing on the numba kernel when numba imports
    state_space: bool = True  # exact pricing without branching rules over bins of interference states
    set_first: int = 2_000_000  # sets the compiled set search may evaluate before the state search takes over
    set_first_joint: int = 100_000  # the same when a type has several batch options (joint: more sets, each slower)
    # -- joint batch policy (issue 24, item 1: joint at 64/100 workloads) --
    lean_options: int = 2  # joint: heuristic pricing first searches each type's this many options of least share alone
    # joint: fixed_share (there the search over the sizing's split never proves its own optimum in
    # time; it only seeds, and the root LP needs the time more). 0 since stop 50, so it does not run
    # under joint: on 20 joint-64 seeds the same plans and bounds as at 0.1 and 0.05, each proof
    # sooner (median of 15: 18.8 s against 33.6 and 30.3 s; docs/exact.md)
    fixed_share_joint: float = 0.0
    # joint: exhaustive_share (a state call under joint meets its first column after seconds; the next
    # ones come faster, so a longer call brings more columns per second of search)
    exhaustive_share_joint: float = 0.1
    # joint: an exhaustive state call also returns the sets it met worth more than 1 + this (below its
    # threshold; a negative value: off), unless it proves the threshold
    collect_above: float = 1e-6
    collect_one_each: bool = False  # the same where each type has one option (set by warm())

    # -- the set search (levels.py, kernel.py) -----------------------------------------------
    ghosts: int = 3  # additions counted exactly in the bound; beyond, 'ghosts or more'
    integer_bound: bool = True  # kernel: tighten the fractional knapsack by the integer one per ghost count
    chunk_seconds: float = 0.2  # kernel: target wall time of one call (the deadline is checked between calls)
    first_chunk: int = 5000  # kernel: evaluations in the first call, before the rate is known
    # kernel: threads of one exhaustive set search (setwalk.py; capped at the cores this process may
    # use): a search not done after its first chunk splits its stack over them (1: serial, as before).
    # A call capped below set_threads_from evaluations stays serial, so where it stops is exact (the
    # hand-off to the state search after set_first sets); listings (enum_evaluations) are threaded
    set_threads: int = 2
    set_threads_from: int = 10_000_000
    beam_span: int = 64  # numpy beam: a set is extended only by the next this many options (by dual)
    dfs_batch: int = 2000  # numpy: sets expanded per step of the exhaustive search
    oracle_rows: int = 20_000  # numpy: rows per oracle call (memory)
    bound_cells: int = 4_000_000  # numpy: rows x options x members per bound block (memory)

    # -- the interference-state search (statespace.py) ---------------------------------------
    # bins this narrow in L2 demand and (leaf_p) in watts get their exact optimum. 4 and 32, not 0.25
    # and 2, since a leaf lists under both bounds and checks its sets in truth: on the same duals,
    # the state calls of a paper solve at 100 workloads took 1.5 s instead of 16.2 s (docs/exact.md)
    leaf_c: float = 4.0
    leaf_p: float = 32.0
    # a dive step's state search (primal.py) lists at this size: its duals are far from the LP's
    # optimum (the best sets worth 1.2-1.7), where a wide leaf's first sets fit. The same as
    # leaf_c x leaf_p but where configurations are large (many_members)
    dive_leaf_c: float = 4.0
    dive_leaf_p: float = 32.0
    # bins leaf / floor narrow are not split again: their bound stays unresolved. 4096 (was 256 with
    # leaves 16 times narrower: the same 0.001 L2 units and 0.008 W). Not 16: with split workloads
    # the root LP sits 0.01-0.1 above an integer, and proving its ceiling needs thresholds a few
    # 1e-4 above 1 that bins of 0.25 / 16 left unresolved (issue 24, docs/exact.md)
    floor: float = 4096.0
    # multiplier steps of one Lagrangian bound: 6, not 20, since a bin starts from its parent's
    # multipliers (on the same duals, proofs 2-3x faster, the bins visited about the same)
    iterations: int = 6
    max_sets: int = 20_000  # sets one leaf may list before its exact optimum is given up (split instead)
    # and the steps of its depth-first search (items tried as a next pick): leaf_rate per second
    # left to the call's deadline, at least leaf_steps. A step took 2.6-7.5 ns on heavy-tailed
    # rates, where one leaf walked 2.7e9 steps (7 s) in a call of 0.6 s: the bin stays open instead
    leaf_rate: float = 1.5e8
    leaf_steps: int = 1_000_000
    # threads of one state search (statepool.py; capped at the cores this process may use): its
    # bins are visited best first on worker copies once a call has run state_parallel_after
    # seconds (short calls stay serial, as before); the compiled kernels release the GIL
    state_threads: int = 2
    state_parallel_after: float = 0.05

    # -- mixed fleets (fleet.py, fleetbnp.py) ------------------------------------------------
    fleet_heuristic_columns: int = 60  # columns one heuristic pricing call returns per GPU type
    node_mip_share: float = 0.25  # of the time left, for the integer master at a node that must branch
    single_type_rows: int = 30  # from this many rows, each unlimited type's single-type search seeds the incumbent
    single_type_share: float = 0.6  # of the time limit at most, for those seeds together (a fair share per type)
    tie_break_seconds: float = 5.0  # at most, for the fewest GPUs among the least-cost covers found

    # -- datacenter sizes under the paper policy (issue 24, item 3: "large") -----------------
    # from this many workloads (master rows) the search is arranged for a root LP that does not
    # converge within the limit (docs/exact.md, "Benchmark of exact at datacenter sizes"):
    # - the search over the sizing's split does not run first (it took its whole fixed_share of the
    #   limit, and the search over every split then started from a new master with a plan no
    #   better than the greedy's);
    # - the integer master runs without HiGHS's presolve (on 13,000-column masters it ran 10-20 s
    #   past a 5 s limit: the presolve does not check the clock; without it the limit held);
    # - the root does not dive before the final phase (no such dive found a plan at 200-500
    #   workloads, each took 20-100 s of a root whose bound needs the time);
    # - the set search hands over to the state search after set_first_large sets instead of set_first
    large_rows: int = 150
    set_first_large: int = 200_000
    # - a dive prices dive_rounds_large rounds per step and rounds up at least one in
    #   round_share_large of the fractional columns (at 200, a dive of the defaults made 10 steps
    #   in its 11 s and ended without a plan)
    dive_rounds_large: int = 2
    round_share_large: int = 15
    # - the root's column pool: past pool_max columns, the columns of largest reduced cost that
    #   the LP does not use are deleted down to pool_keep (LP re-solves took 135 of 300 s at 500)
    pool_max: int = 12_000
    pool_keep: int = 8_000
    # - a dive stops rounding once its fixings leave at most residual_rows rows uncovered, and a
    #   small branch-and-price solves what is left (residual.py; at 200 workloads a dive that
    #   rounded to the end found no plan below the greedy's 72, the one that left 16 rows found 70)
    residual_rows: int = 40
    # the same below large_rows (0: off there). 20: at 100 workloads under joint one plan of
    # three came out a GPU lower (seed 16100: 35 / 34, was 36 / 34); joint 64 (fresh seeds
    # 27000-27004) and fresh heavy-tailed rates unchanged; the 219 committed results unchanged
    residual_rows_small: int = 20
    # - no tree below the root (its integer master, then Ryan-Foster nodes, which never closed a
    #   node at 200 in the limit): once the root's column generation ends, the final phase takes
    #   the rest of the limit, with up to final_dives_large dives (each on final_dive_share of the
    #   time left; each one's columns change the next one's path). Fresh seeds 31010-31014 at
    #   200: 4/5 proven, against 2/5 with the tree and one dive (docs/exact.md)
    tree_large: bool = False
    final_dives_large: int = 4
    # - the final dives after the first round with noise of this width on how near a column is
    #   to its ceiling (0: every dive rounds the same way; its path then changes only by new
    #   columns). At 200, fifteen fresh instances: 2 GPUs fewer in all, no proof gained or lost
    #   (thin evidence: a plan moves 1-2 GPUs between runs; docs/exact.md)
    dive_noise: float = 0.15
    # - below large_rows, up to final_dives_small such dives (with the same noise after the first)
    #   where the search cannot branch (types of several workloads) or branched out of time.
    #   Measured together with converge_share: on the six open heavy-tailed instances either alone
    #   proved one, together two (docs/exact.md, "Sixth round")
    final_dives_small: int = 6
    # - after those, more final dives (with noise) while more than final_more_reserve of the limit
    #   is left, up to final_dives_max in all (1.0: none more). The counts above were chosen at
    #   120 s; at longer limits the phase ran out of dives, not of time (200 workloads, 900 s:
    #   the solve returned after 337 s with its gap open). The rest keeps the bound search and
    #   the integer master over every column their time (docs/exact.md, "The final phase uses
    #   its limit")
    final_more_reserve: float = 0.1
    final_dives_max: int = 100
    # a dive's round-up that lifts its LP past incumbent - 1 + backoff_slack is undone and only the
    # half of its columns nearest their ceiling rounded, halving again while the LP still passes,
    # up to dive_backoffs times a dive (0: off). At 200 one round-up of 11-20 columns lifted the
    # LP by 0.4-0.8 at once, past the GPU the dive was for, and the dive went on from there. Fresh
    # sets at 200: 3 of 15 proven against 1, 4 GPUs fewer; the open heavy-tailed six: 4 proven
    # (docs/exact.md, "A round-up backed off")
    dive_backoffs: int = 20
    backoff_slack: float = 0.0
    # from lns_rows master rows, the last lns_share of the final phase destroys and repairs the
    # incumbent (neighbourhood.py), after lns_dives final dives: its lns_gpus GPUs of largest
    # reduced cost at the root's duals, then drawn ones, each covered again by a residual search
    # of at most lns_seconds that must save a GPU, for lns_until of that time (the rest: the final
    # bound search and integer master). At 500 workloads (the final phase's dives end 5-7 GPUs
    # above the LP there) it saved 1 and 2 GPUs; at 200 (dives end one above) it saved none and
    # took the dives' time (docs/exact.md, "Eighth round")
    # From lns_rows rows the final phase takes lns_final_share of the limit, not final_share: the
    # root's LP does not converge there in any case (500: 171.3 at 32 s, 169.0 at 235 s) and the
    # neighbourhoods save GPUs with time: five fresh 500s side by side, 3 GPUs fewer, none more
    # (docs/exact.md, "Ninth round")
    lns_rows: int = 400
    lns_final_share: float = 0.5
    lns_share: float = 0.8
    lns_dives: int = 1
    lns_gpus: int = 10
    lns_seconds: float = 4.0
    lns_until: float = 0.9
    lns_grow: float = 1.25  # a neighbourhood proven not to shrink: the next one this much larger
    # from group_rows workloads (no warm start), the first group_share of the limit solves the
    # workloads dealt into groups of about group_size (groups.py; a split workload with its
    # replicas), each by exact over every split; their plans together seed the whole search's
    # incumbent and pool, and the root gets its share of the time left. At 500, 300 s, side by side
    # on fresh seeds: plans 2-3 GPUs lower, bounds 2 higher (docs/exact.md, "Groups of like mix")
    group_rows: int = 400
    group_size: int = 100
    group_share: float = 0.4
    # a group's own solve skips the search over the sizing's split (fixed_share) that seeds a plain
    # solve: on 24 s a group, fresh 500s 31120-31122, the groups' plans summed 1, 1 and 0 GPUs lower
    # and 9 of 15 groups proven against 6 (docs/exact.md, "500 on fresh seeds")
    group_fixed_share: float = 0.0
    # where the root's bound is below min(UB, ceil(LP)) as the final phase starts (its column
    # generation cut by the clock, or tailing), up to inout_share of the limit goes to in-out
    # separation for the bound (inout.py): points a of the way from the best dual-feasible centre
    # (least shares beside a partner, or the certificate) to the LP's duals, each valued by at
    # most inout_steps exhaustive calls, for up to inout_rounds rounds. At 500 workloads the LP's
    # own duals prove less than the volume bound; these points proved 1-4 GPUs more on five
    # instances, in 6-15 s (docs/exact.md, "Tenth round")
    inout_share: float = 0.05
    inout_alphas: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5)
    inout_steps: int = 6
    inout_rounds: int = 3

    def many_members(self) -> ExactSettings:
        """These settings where configurations are large (large_members): exhaustive calls hand
        over to the state search after set_first_members sets, and its leaves are
        leaf_c_members x leaf_p_members (a dive's stay dive_leaf_c x dive_leaf_p)."""
        return replace(self, set_first=min(self.set_first, self.set_first_members), leaf_c=self.leaf_c_members,
                       leaf_p=self.leaf_p_members)

    def warm(self) -> ExactSettings:
        """These settings for a solve that starts warm (warm_set_first, warm_exhaustive_share,
        warm_collect)."""
        return replace(self, set_first=self.warm_set_first, set_first_joint=self.warm_set_first,
                       set_first_large=self.warm_set_first, exhaustive_share=self.warm_exhaustive_share,
                       exhaustive_share_joint=self.warm_exhaustive_share,
                       collect_one_each=self.collect_one_each or self.warm_collect)


DEFAULT = ExactSettings()
