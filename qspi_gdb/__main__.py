from qspi_gdb.cli import main

raise SystemExit(main())
