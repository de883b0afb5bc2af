"""`python -m qspi_gdb.sim`: run a virtual board (see `qspi_gdb.sim.cli`)."""

from qspi_gdb.sim.cli import main

raise SystemExit(main())
