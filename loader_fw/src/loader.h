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

/* The loader: greeting, then the service loop (commands from the ring, status, heartbeat)
 * until the host halts the core. Never returns. */
void ql_main(void);

/* Called from every wait (at least every QL_HEARTBEAT_US): refresh the published time and
 * notice a host that let the core run again. */
void ql_tick(void);

/* Called right before a task that lets EasyDMA read buffers starts: publish them busy first,
 * so a host that halts the core from then on sees them taken. */
void ql_publish_buffers(void);

/* Entry point the host jumps to (own stack, interrupts masked). */
void qspi_loader_entry(void);

#endif /* QL_LOADER_H */
