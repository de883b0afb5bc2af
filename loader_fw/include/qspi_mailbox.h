/*
 * qspi_mailbox.h - the ONE definition of the shared-RAM mailbox between the host (qspi_gdb)
 * and the QSPI RAM loader. qspi_gdb/mailbox.py parses this file (tests/test_mailbox_abi.py
 * fails if the two drift), so keep to the simple forms used here: `#define QL_NAME value`
 * constants (decimal or hex, optional `u`), and structs made only of uint32_t fields
 * (arrays `uint32_t name[N]` and nested `struct ql_x name[N]` allowed, N a number or QL_
 * constant). Every field is a little-endian 32-bit word; no padding anywhere.
 *
 * Protocol (ABI 2): the loader keeps running; the host stops it only by request.
 *   1. Host loads the ELF, writes SP = qspi_loader_stack_top, PC = qspi_loader_entry, resumes.
 *      The loader publishes the greeting (magic, ABI version, build id, chip, buffers) and
 *      from then on runs its service loop until the host halts it (a debugger halt request,
 *      e.g. GDB -exec-interrupt: acted on at once, unlike a `bkpt` the debugger notices only at
 *      its next poll). A halt at qspi_loader_fault_halt (its own `bkpt`) means a fault.
 *   2. The command queue is a ring: the host writes command i into cmd[i % QL_MAX_CMDS] with
 *      tag = i + 1 and gen = its stop counter (all while the core is halted: one contiguous
 *      write per stop, two when the ring wraps). The loader runs the command at done_seq when
 *      its slot's tag is done_seq + 1, in order, and counts them in done_seq (a command that
 *      starts flash work counts as done once started).
 *   3. While it runs the loader refreshes time_us at least every heartbeat_us (an idle loader
 *      also looks for new commands that often), notes when it first sees a slot of a new gen
 *      (resume_us: when the host let it run again), and when the READY of its last flash task
 *      came (ready_seq, ready_us). The host plans its stops from these and the flash's busy
 *      estimates: it halts the loader when it has data to add or results to collect, and never
 *      waits for a halt the loader makes itself.
 * The first failing command marks the commands of its gen after it QL_ST_SKIPPED (state =
 * QL_STATE_ERROR); commands of a later gen run again. ERASE and PROGRAM start the flash work and count
 * as done: the flash keeps erasing / EasyDMA keeps reading while the core runs on or is halted.
 * The nRF QSPI peripheral checks the flash's busy bit itself before each erase, write and read
 * it sends, so an ERASE followed by a PROGRAM runs back to back without the CPU. Buffers whose
 * data EasyDMA may still read are QL_BUF_DMA (free_mask): the host must not write them, and a
 * command naming one waits until EasyDMA is done with it (QL_ST_BUF_BUSY if it still is). The
 * host also keeps away from buffers named by queued commands the loader has not started yet.
 * QL_OP_EXIT leaves: flash idle, VTOR/NVIC/timer restored, then the core sleeps until halted.
 */
#ifndef QSPI_MAILBOX_H
#define QSPI_MAILBOX_H

#include <stdint.h>

#define QL_MAGIC            0x4C505351u /* "QSPL" in memory order */
#define QL_ABI_VERSION      3u
#define QL_MAX_CMDS         32u /* ring slots */
#define QL_MAX_BUFFERS      16u
#define QL_MAX_INIT_INSTR   8u
#define QL_CANARY           0x5AFEC0DEu /* bottom word of the loader stack */
#define QL_HEARTBEAT_US     1000u /* time_us is at most this old while the loader runs */

/* chip ids (info.chip) */
#define QL_CHIP_NRF52840    52840u
#define QL_CHIP_NRF5340     5340u

/* mailbox.state */
#define QL_STATE_IDLE       0u  /* not initialised (no QSPI activity) */
#define QL_STATE_READY      1u  /* initialised, no error */
#define QL_STATE_ERROR      2u  /* a command failed (the commands queued with it were skipped) */
#define QL_STATE_EXITED     3u  /* QL_OP_EXIT done: the core sleeps until the host halts it */

/* commands (ql_cmd.op) */
#define QL_OP_NOP           0u  /* does nothing (status OK) */
/* INIT: from mailbox.config; result0 = JEDEC id (0xMMTTCC), result1 = SCK in Hz */
#define QL_OP_INIT          1u
/* DEINIT: wait idle, restore the address mode, disable the peripheral (erratum 122) */
#define QL_OP_DEINIT        2u
#define QL_OP_READ_ID       3u  /* result0 = JEDEC id */
/* SFDP: read len bytes of SFDP at address addr into buffer buf at buf_off */
#define QL_OP_SFDP          4u
/* ERASE: [addr, addr+len) in blocks of arg (QL_ERASE_*); the last block is left running */
#define QL_OP_ERASE         5u
/* PROGRAM: len bytes from buffer buf at buf_off to flash addr (the data may run on into the
   following buffers); left running. With QL_CF_LZ4 the buffer holds arg bytes of an LZ4 block
   that the loader decodes first to arg2, a byte offset into the buffer area (buffer index x
   buffer size + offset, word aligned); the decoded data must be exactly len bytes with CRC-32
   arg3, or nothing is programmed (QL_ST_CORRUPT). A command whose buffers the previous task's
   EasyDMA still reads waits for that task's READY: the loader never writes such a buffer. */
#define QL_OP_PROGRAM       6u
#define QL_OP_READ          7u  /* read len bytes at flash addr into buffer buf at buf_off */
/* CRC32: result0 = CRC-32 (IEEE, as zlib) of flash [addr, addr+len), any alignment */
#define QL_OP_CRC32         8u
/* CRC_LIST: arg = sector size; len/arg CRC-32 words (one per sector) into buffer buf.
   In two steps, so that a sector whose first bytes differ from the image is not read further
   (arg2 = those prefix bytes, word aligned, below the sector size; a bitmap follows the words,
   word len/arg + i/32, bit i%32 for sector i):
   QL_CF_PREFIX: the words hold on entry the CRC-32 each sector's first arg2 bytes should have;
     where they have it, the word stays and the sector's bit is set, else the word becomes their
     CRC-32 and the bit is cleared. result0 = bits set.
   QL_CF_REST: the CRC-32 of each sector whose bit is set is continued over the rest of the
     sector (its word becomes the sector's CRC-32). result0 = bits set. */
#define QL_OP_CRC_LIST      9u
#define QL_OP_CINSTR        10u /* raw custom instruction: addr = opcode, len = data bytes (0..8),
                                   arg/arg2 = data bytes 0..3/4..7 (tx), flags QL_CF_WREN/WIPWAIT;
                                   result0/result1 = data bytes received */
#define QL_OP_WAIT_IDLE     11u /* wait until the flash is idle and every buffer is free */
#define QL_OP_RDSR          12u /* result0 = status register 1 */
#define QL_OP_EXIT          13u /* leave (see above) */
#define QL_OP_COUNT         14u

/* ql_cmd.flags */
#define QL_CF_WREN          0x1u /* CINSTR: send WREN first */
#define QL_CF_WIPWAIT       0x2u /* CINSTR: wait for WIP=0 first */
#define QL_CF_SYNC          0x4u /* ERASE/PROGRAM: wait until the flash finished before returning */
#define QL_CF_LZ4           0x8u /* PROGRAM: the buffer holds an LZ4 block (see QL_OP_PROGRAM) */
#define QL_CF_PREFIX        0x10u /* CRC_LIST: each sector's first bytes (see QL_OP_CRC_LIST) */
#define QL_CF_REST          0x20u /* CRC_LIST: the rest of the sectors whose bit is set */

/* erase units (ql_cmd.arg for QL_OP_ERASE; values = QSPI ERASE.LEN) */
#define QL_ERASE_4K         0u
#define QL_ERASE_64K        1u
#define QL_ERASE_CHIP       2u

/* status codes (ql_cmd.status, mailbox.last_status). qspi_gdb/mailbox.py maps each to a message. */
#define QL_ST_OK            0u
#define QL_ST_SKIPPED       1u  /* not run: an earlier command in the queue failed */
#define QL_ST_BAD_OP        2u  /* unknown command */
#define QL_ST_NOT_INIT      3u  /* command needs INIT first */
#define QL_ST_RANGE         4u  /* flash range outside the chip (addr + len > flash_size) */
#define QL_ST_ALIGN         5u  /* address / length / buffer offset not aligned as required */
#define QL_ST_BUF_RANGE     6u  /* bad buffer index or buf_off + len beyond the buffer */
#define QL_ST_BUF_BUSY      7u  /* buffer still in use by EasyDMA after waiting for it */
#define QL_ST_ADDR_24BIT    8u  /* access at or above 16 MiB while in 24-bit address mode */
#define QL_ST_BAD_ARG       9u  /* zero length, bad erase unit, too many bytes, ... */
#define QL_ST_CONFIG        10u /* invalid flash configuration block */
#define QL_ST_TIMEOUT       11u /* QSPI READY did not come in time (result0 = stage) */
#define QL_ST_FLASH_BUSY    12u /* flash stayed busy (WIP) beyond the part's maximum time */
#define QL_ST_NO_FLASH      13u /* JEDEC id reads 000000 / FFFFFF: no flash answering */
/* JEDEC id differs from config.expected_jedec (result0 = the id read) */
#define QL_ST_JEDEC_MISMATCH 14u
#define QL_ST_QE_FAILED     15u /* quad-enable bit did not stick */
#define QL_ST_ADDR4_FAILED  16u /* flash did not enter / leave 4-byte address mode */
#define QL_ST_CLOCK         17u /* HFXO did not start */
/* an LZ4 block is malformed, or decodes to another length or CRC-32: nothing was programmed */
#define QL_ST_CORRUPT       18u
#define QL_ST_COUNT         19u

/* buffer states (ql_buffer.state) */
#define QL_BUF_FREE         0u  /* host may write / read it */
#define QL_BUF_DMA          1u  /* EasyDMA may still read it: do not touch */

/* config.addr_mode */
#define QL_ADDR_24BIT       0u
#define QL_ADDR_32BIT       1u

/* config.enter_4b: how to enter 4-byte address mode (JESD216 DW16 enter methods) */
#define QL_4B_NONE          0u  /* chip is <= 16 MiB or needs nothing */
#define QL_4B_B7            1u  /* EN4B 0xB7 (DW16 bit 0); leave with exit_4b_op */
#define QL_4B_WREN_B7       2u  /* WREN then 0xB7 (DW16 bit 1); leave with WREN + exit_4b_op */
#define QL_4B_BANKREG       3u  /* bank register 0x17 bit 7 (DW16 bit 3); leave with 0x17 = 0 */
#define QL_4B_ALWAYS        4u  /* chip is always in 4-byte mode (DW16 bit 6) */

/* config.qe_method: JESD216 DW15 QER values 0..6 */
#define QL_QE_NONE          0u
#define QL_QE_S2B1_V1       1u
#define QL_QE_S1B6          2u
#define QL_QE_S2B7          3u
#define QL_QE_S2B1_V4       4u
#define QL_QE_S2B1_V5       5u
#define QL_QE_S2B1_V6       6u

/* config.flags */
#define QL_CFG_SKIP_QE      0x1u /* do not touch the quad-enable bit */
#define QL_CFG_IO2_LOW      0x2u /* IO2 (WP#) low during custom instructions (else high) */
#define QL_CFG_IO3_LOW      0x4u /* IO3 (HOLD#/RESET#) low during custom instructions */

/* ql_init_instr.flags */
#define QL_II_WREN          0x1u
#define QL_II_WIPWAIT       0x2u

/* ql_cmd.result0 stage codes for QL_ST_TIMEOUT */
#define QL_STAGE_ACTIVATE   1u
#define QL_STAGE_CINSTR     2u
#define QL_STAGE_ERASE      3u
#define QL_STAGE_WRITE      4u
#define QL_STAGE_READ       5u
#define QL_STAGE_ERRATA     6u

#define QL_NO_PIN           0xFFFFFFFFu
#define QL_NO_QUERY         0xFFFFFFFFu

/* Busy times (us) the loader uses where the host's ql_config leaves a t_*_us field at 0:
 * generous for any serial NOR up to 256 Mbit. The host's deadlines use the same values. */
#define QL_DEF_PAGE_TYP_US  1000u
#define QL_DEF_PAGE_MAX_US  10000u
#define QL_DEF_4K_TYP_US    50000u
#define QL_DEF_4K_MAX_US    1000000u
#define QL_DEF_64K_TYP_US   500000u
#define QL_DEF_64K_MAX_US   4000000u
#define QL_DEF_CHIP_TYP_US  60000000u
#define QL_DEF_CHIP_MAX_US  2400000000u /* 40 min (MT25QU256A max is 2016 s); timer wraps at 71 min */
#define QL_DEF_WRSR_MAX_US  200000u

/* One custom instruction sent during INIT (after the JEDEC check, before quad enable). */
struct ql_init_instr {
    uint32_t opcode;
    uint32_t len;         /* data bytes 0..8 */
    uint32_t flags;       /* QL_II_* */
    uint32_t data[2];     /* data bytes 0..3 in data[0] (byte 0 = bits 7..0), 4..7 in data[1] */
};

/* Flash configuration: every nrfutil ext-mem JSON field plus what the loader needs. */
struct ql_config {
    uint32_t pin_sck;        /* GPIO number port*32+pin (nrfutil "pins") */
    uint32_t pin_csn;
    uint32_t pin_io0;
    uint32_t pin_io1;
    uint32_t pin_io2;        /* QL_NO_PIN = not used (single/dual modes only) */
    uint32_t pin_io3;
    uint32_t sck_hz;         /* sck_frequency; the loader picks the fastest SCK <= this */
    uint32_t flash_size;     /* bytes */
    uint32_t page_size;      /* nrfutil page_size: erase page (4096), informational */
    uint32_t addr_mode;      /* QL_ADDR_24BIT / QL_ADDR_32BIT (address_mode) */
    uint32_t readoc;         /* IFCONFIG0.READOC 0..4: FASTREAD READ2O READ2IO READ4O READ4IO */
    uint32_t writeoc;        /* IFCONFIG0.WRITEOC 0..3: PP PP2O PP4O PP4IO */
    uint32_t pp_size;        /* 0 = PPSIZE256, 1 = PPSIZE512 */
    uint32_t sck_delay;      /* IFCONFIG1.SCKDELAY 0..255 */
    uint32_t rx_delay;       /* IFTIMING.RXDELAY 0..7 (nRF5340 erratum 121 forces 6) */
    uint32_t spi_mode;       /* 0 = MODE0, 1 = MODE3 */
    uint32_t enter_4b;       /* QL_4B_* */
    uint32_t exit_4b_op;     /* opcode leaving 4-byte mode for QL_4B_B7 / QL_4B_WREN_B7;
                                0 = EX4B 0xE9 (ISSI parts use 0x29) */
    uint32_t qe_method;      /* QL_QE_* (JESD216 QER) */
    uint32_t expected_jedec; /* 0xMMTTCC, 0 = do not check */
    uint32_t mode_query_op;  /* opcode that reads a register telling the current address mode
                                (e.g. 0x70 flag status bit 0, 0x16 bank register bit 7,
                                0x15 Macronix config bit 5), QL_NO_QUERY = assume 3-byte */
    uint32_t mode_query_bit; /* bit number in that register that is 1 in 4-byte mode */
    uint32_t wip_bit;        /* bit number of WIP/BUSY in status register 1 (nrfjprog WIPIndex) */
    uint32_t flags;          /* QL_CFG_* */
    /* time-outs and poll pacing, microseconds (typical from SFDP, max from SFDP/datasheet) */
    uint32_t t_page_typ_us;
    uint32_t t_page_max_us;
    uint32_t t_4k_typ_us;
    uint32_t t_4k_max_us;
    uint32_t t_64k_typ_us;
    uint32_t t_64k_max_us;
    uint32_t t_chip_typ_us;
    uint32_t t_chip_max_us;
    uint32_t t_wrsr_max_us;  /* status register write */
    uint32_t n_init;         /* custom init instructions used (0..QL_MAX_INIT_INSTR) */
    struct ql_init_instr init[QL_MAX_INIT_INSTR];
};

struct ql_cmd {
    uint32_t op;        /* QL_OP_* */
    uint32_t flags;     /* QL_CF_* */
    uint32_t addr;      /* flash offset (SFDP: SFDP address; CINSTR: opcode) */
    uint32_t len;       /* bytes */
    uint32_t buf;       /* buffer index */
    uint32_t buf_off;   /* byte offset in the buffer */
    uint32_t arg;       /* ERASE: unit; CRC_LIST: sector size; CINSTR: tx bytes 0..3;
                           PROGRAM+LZ4: compressed bytes */
    uint32_t arg2;      /* CINSTR: tx bytes 4..7; PROGRAM+LZ4: where the data is decoded */
    uint32_t arg3;      /* PROGRAM+LZ4: CRC-32 of the decoded data */
    uint32_t status;    /* out: QL_ST_* */
    uint32_t result0;   /* out */
    uint32_t result1;   /* out */
    uint32_t done_us;   /* out: loader timer when the command finished (flash work: started) */
    uint32_t tag;       /* in: ring index + 1: the slot holds the command the loader waits for */
    uint32_t gen;       /* in: the host's stop counter when it wrote the command */
};

struct ql_buffer {
    uint32_t addr;      /* RAM address, word aligned (EasyDMA-capable RAM) */
    uint32_t size;      /* bytes */
    uint32_t state;     /* QL_BUF_* */
    uint32_t reserved;
};

struct ql_mailbox {
    /* greeting, written by the loader when it is entered */
    uint32_t magic;          /* QL_MAGIC */
    uint32_t abi_version;    /* QL_ABI_VERSION */
    uint32_t build_id;       /* equals the ELF's qspi_loader_build_id */
    uint32_t chip;           /* QL_CHIP_* */
    uint32_t nbuffers;
    uint32_t max_cmds;       /* QL_MAX_CMDS */
    uint32_t stack_base;     /* lowest stack word, holds QL_CANARY */
    uint32_t max_dma;        /* largest EasyDMA transfer (CNT limit) */
    uint32_t heartbeat_us;   /* QL_HEARTBEAT_US */
    uint32_t entry_us;       /* loader timer when it was entered */
    /* status, kept up to date by the loader while it runs */
    uint32_t state;          /* QL_STATE_* */
    uint32_t done_seq;       /* commands finished (or, flash work, started) */
    uint32_t free_mask;      /* bit i = buffer i is QL_BUF_FREE */
    uint32_t last_status;    /* status of the last command run */
    uint32_t busy;           /* 1 = flash work (READY or WIP) still outstanding */
    uint32_t idle;           /* 1 = the loader waits for commands */
    uint32_t jedec_id;       /* from INIT */
    uint32_t sck_hz;         /* SCK actually used */
    uint32_t addr4_before;   /* 1 = chip was in 4-byte mode before INIT (restored by DEINIT) */
    uint32_t time_us;        /* loader timer (1 MHz, wraps), refreshed every heartbeat_us */
    uint32_t host_seen;      /* the newest gen of a command slot the loader saw ... */
    uint32_t resume_us;      /* ... first, at this loader time */
    uint32_t ready_seq;      /* the flash task of command ready_seq - 1 signalled READY ... */
    uint32_t ready_us;       /* ... at this loader time (EasyDMA done with its buffers) */
    uint32_t done_us;        /* loader timer when command done_seq - 1 finished */
    uint32_t fail_count;     /* commands that failed so far ... */
    uint32_t fail_seq;       /* ... the last of them: command fail_seq - 1 (its slot says why) */
    uint32_t canary;         /* bottom stack word: QL_CANARY unless the stack overflowed */
    uint32_t reserved0;
    /* the command ring, written by the host while the core is halted */
    struct ql_cmd cmd[QL_MAX_CMDS];
    struct ql_buffer buffer[QL_MAX_BUFFERS];
    struct ql_config config;
};

#endif /* QSPI_MAILBOX_H */
