/*
 * Thin main for the Zephyr build. The host normally jumps straight to qspi_loader_entry (its
 * own stack, interrupts masked) without running Zephyr's start-up at all; started from reset
 * the loader greets and halts the same way.
 */
#include "loader.h"

int main(void)
{
    qspi_loader_entry();
    return 0;
}
