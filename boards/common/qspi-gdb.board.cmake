# SPDX-License-Identifier: Apache-2.0
# Offers `west flash -r qspi-gdb` on a board: include() this from the board's board.cmake
# after board_runner_args(qspi-gdb "--ext-mem-config-file=..." ...).
board_finalize_runner_args(qspi-gdb)
