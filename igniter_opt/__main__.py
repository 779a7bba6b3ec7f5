from igniter_opt.cli import main

main()
