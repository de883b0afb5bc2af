/* qspi.h - the nRF QSPI peripheral and the serial NOR behind it.
 *
 * All functions return a QL_ST_* status. Flash work (erase, program) is started and left
 * running: the "pending" state remembers the outstanding READY event (EasyDMA may still read
 * the buffer) and that the flash may still be busy (WIP). qspi_settle() waits for both, with
 * time-outs from the part's maximum times. Erase and program only wait for READY: the
 * peripheral checks the flash's busy bit itself before it sends them, so an erase and the
 * program after it run back to back without the CPU.
 */
#ifndef QL_QSPI_H
#define QL_QSPI_H

#include <stdint.h>

#include "qspi_mailbox.h"

uint32_t qspi_init(const struct ql_config *cfg, uint32_t *jedec_id);
uint32_t qspi_deinit(void);
int qspi_initialised(void);

/* Consume a READY that arrived while the core was halted (never blocks). */
void qspi_poll(void);
/* Wait for the outstanding READY only (the peripheral is then free; WIP may still be 1). */
uint32_t qspi_wait_dma(void);
/* Wait for READY and then for WIP = 0. */
uint32_t qspi_settle(void);
/* Buffers EasyDMA may still access (bit i = buffer i). */
uint32_t qspi_dma_mask(void);
/* 1 if EasyDMA may still access any of [p, p + len). */
int qspi_dma_overlaps(const uint8_t *p, uint32_t len);
/* 1 while flash work may still be running. */
uint32_t qspi_busy(void);
/* The command (index + 1) on whose behalf tasks are started from now on. */
void qspi_set_owner(uint32_t seq);
/* The last erase/program task that signalled READY: its command (index + 1) and the time. */
void qspi_ready_info(uint32_t *seq, uint32_t *us);

uint32_t qspi_read_jedec(uint32_t *id);
uint32_t qspi_rdsr(uint32_t *sr);
uint32_t qspi_cinstr(uint32_t opcode, uint32_t nbytes, uint32_t tx0, uint32_t tx1, uint32_t flags,
                     uint32_t *rx0, uint32_t *rx1);
uint32_t qspi_sfdp(uint32_t addr, uint8_t *dst, uint32_t len);
uint32_t qspi_erase_start(uint32_t addr, uint32_t unit);
uint32_t qspi_write_start(uint32_t addr, const uint8_t *src, uint32_t len, uint32_t buf_mask);
/* Start a read (the peripheral must be idle); complete it with qspi_wait_dma(). */
uint32_t qspi_read_start(uint32_t addr, uint8_t *dst, uint32_t len);

uint32_t qspi_sck_hz(void);
uint32_t qspi_addr4_before(void);
uint32_t qspi_addr_mode(void);
uint32_t qspi_flash_size(void);
uint32_t qspi_last_stage(void);

#endif /* QL_QSPI_H */
