/* loader.h - what entry.c (or the Zephyr app) provides to the loader core, and back. */
#ifndef QL_LOADER_H
#define QL_LOADER_H

#include <stdint.h>

#include "chip.h"

extern const uint32_t qspi_loader_build_id;
extern uint32_t ql_stack_mem[QL_STACK_BYTES / 4u];
extern uint8_t ql_scratch_mem[2][QL_SCRATCH_BYTES];
extern uint8_t ql_buffer_mem[QL_NBUF * QL_BUF_SIZE];
extern const uint32_t ql_vectors[16];

/* One call from the host: greeting, queued commands, status. Returns to the halt point. */
void ql_service(void);

/* Entry point the host jumps to (own stack, interrupts masked); ends on `bkpt` at
 * qspi_loader_halt. */
void qspi_loader_entry(void);

#endif /* QL_LOADER_H */
