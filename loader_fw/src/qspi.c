/* qspi.c - drives the nRF QSPI peripheral by registers (QSPI_FACTS.md §1, §1b, §2, §7.2). */
#include "qspi.h"

#include "chip.h"
#include "hw.h"
#include "loader.h"

#define SPI_WREN        0x06u
#define SPI_RDSR        0x05u
#define SPI_RDSR2       0x35u
#define SPI_WRSR        0x01u
#define SPI_WRSR2       0x31u
#define SPI_RDSR2_B7    0x3Fu
#define SPI_WRSR2_B7    0x3Eu
#define SPI_RDID        0x9Fu
#define SPI_RDSFDP      0x5Au
#define SPI_EN4B        0xB7u
#define SPI_EX4B        0xE9u
#define SPI_BRRD        0x16u
#define SPI_BRWR        0x17u

#define MIB16           0x1000000u
#define CINSTR_TIMEOUT_US 20000u
#define ERRATA_TIMEOUT_US 20000u
#define ACTIVATE_BASE_TIMEOUT_US 500000u /* nrfx default */


enum wip_kind { WIP_NONE = 0, WIP_PAGE, WIP_4K, WIP_64K, WIP_CHIP, WIP_WRSR };

struct timing {
    uint32_t typ[6];
    uint32_t max[6];
};

struct pending {
    uint32_t dma;         /* a task's READY is outstanding */
    uint32_t dma_start;
    uint32_t dma_timeout;
    uint32_t dma_stage;
    uint32_t dma_bufs;    /* buffers EasyDMA may access until READY */
    uint32_t dma_lo;      /* ... and the RAM it accesses: [dma_lo, dma_hi) */
    uint32_t dma_hi;
    uint32_t dma_owner;   /* the command (index + 1) that started the task */
    uint32_t wip_next;    /* what the flash does after READY */
    uint32_t wip;         /* flash may be busy (kind) */
    uint32_t wip_start;
    uint32_t owner;       /* the command running now */
    uint32_t ready_seq;   /* the last flash task that signalled READY: its command ... */
    uint32_t ready_us;    /* ... and when */
};

QL_DATA static struct pending pend;
QL_DATA static struct timing tm;
QL_DATA static uint32_t inited;
QL_DATA static uint32_t sck_hz;
QL_DATA static uint32_t sck_mhz;
QL_DATA static uint32_t page_bytes;
QL_DATA static uint32_t addr_mode;
QL_DATA static uint32_t flash_size;
QL_DATA static uint32_t enter_4b;
QL_DATA static uint32_t exit_4b_op;
QL_DATA static uint32_t mode_query_op;
QL_DATA static uint32_t mode_query_bit;
QL_DATA static uint32_t addr4_before;
QL_DATA static uint32_t addr4_now;
QL_DATA static uint32_t last_stage;
QL_DATA static uint32_t lio;     /* CINSTRCONF LIO2/LIO3 levels */
QL_DATA static uint32_t wip_mask;

int qspi_initialised(void) { return inited != 0u; }
uint32_t qspi_sck_hz(void) { return sck_hz; }
uint32_t qspi_addr4_before(void) { return addr4_before; }
uint32_t qspi_addr_mode(void) { return addr_mode; }
uint32_t qspi_flash_size(void) { return flash_size; }
uint32_t qspi_last_stage(void) { return last_stage; }
uint32_t qspi_dma_mask(void) { return pend.dma ? pend.dma_bufs : 0u; }

int qspi_dma_overlaps(const uint8_t *p, uint32_t len)
{
    uint32_t lo = (uint32_t)(uintptr_t)p;
    return pend.dma && lo < pend.dma_hi && pend.dma_lo < lo + len;
}

static void dma_range(const uint8_t *p, uint32_t len)
{
    pend.dma_lo = (uint32_t)(uintptr_t)p;
    pend.dma_hi = pend.dma_lo + len;
}
uint32_t qspi_busy(void) { return (pend.dma || pend.wip) ? 1u : 0u; }
void qspi_set_owner(uint32_t seq) { pend.owner = seq; }

void qspi_ready_info(uint32_t *seq, uint32_t *us)
{
    *seq = pend.ready_seq;
    *us = pend.ready_us;
}

static void clear_ready(void)
{
    QSPI(QSPI_EVENTS_READY) = 0u;
    (void)QSPI(QSPI_EVENTS_READY);
    hw_irq_clear_pending(QSPI_IRQN);
}

/* READY observed: EasyDMA is done with the buffers; the flash may now be busy. */
static void dma_done(void)
{
    clear_ready();
    pend.dma = 0u;
    pend.dma_bufs = 0u;
    if (pend.wip_next != WIP_NONE) {
        pend.wip = pend.wip_next;
        pend.wip_start = hw_now_us();
        pend.wip_next = WIP_NONE;
        pend.ready_seq = pend.dma_owner;
        pend.ready_us = pend.wip_start;
    }
}

static uint32_t max_wait(uint32_t kind);

/* Start a task. The peripheral itself waits for the flash's busy bit before it sends an erase,
 * a page program or a read, so the task may start while earlier flash work still runs: its
 * READY deadline includes that work's maximum time. */
static void start_task(uint32_t task, uint32_t timeout_us, uint32_t stage, uint32_t bufs,
                       uint32_t wip_next)
{
    clear_ready();
    if (pend.wip != WIP_NONE) {
        timeout_us += max_wait(pend.wip);
    }
    pend.dma = 1u;
    pend.dma_start = hw_now_us();
    pend.dma_timeout = timeout_us;
    pend.dma_stage = stage;
    pend.dma_bufs = bufs;
    pend.dma_owner = pend.owner;
    pend.wip_next = wip_next;
    if (bufs != 0u) {
        ql_publish_buffers(); /* a halt from now on sees these buffers taken */
    }
    QSPI(task) = 1u;
}

void qspi_poll(void)
{
    if (pend.dma && QSPI(QSPI_EVENTS_READY)) {
        dma_done();
    }
}

uint32_t qspi_wait_dma(void)
{
    if (!pend.dma) {
        return QL_ST_OK;
    }
    if (!hw_wait_event(&QSPI(QSPI_EVENTS_READY), pend.dma_start, pend.dma_timeout)) {
        last_stage = pend.dma_stage;
        return QL_ST_TIMEOUT;
    }
    dma_done();
    return QL_ST_OK;
}

/* Custom instruction of up to 8 data bytes; the peripheral must be idle. */
static uint32_t cinstr_raw(uint32_t opcode, uint32_t nbytes, uint32_t tx0, uint32_t tx1,
                           uint32_t conf_flags, uint32_t timeout_us, uint32_t *rx0, uint32_t *rx1)
{
    if (nbytes > 4u) {
        QSPI(QSPI_CINSTRDAT1) = tx1;
    }
    if (nbytes > 0u) {
        QSPI(QSPI_CINSTRDAT0) = tx0;
    }
    clear_ready();
    uint32_t start = hw_now_us();
    QSPI(QSPI_CINSTRCONF) = (opcode & 0xFFu) | ((nbytes + 1u) << 8) | lio | conf_flags;
    if (!hw_wait_event(&QSPI(QSPI_EVENTS_READY), start, timeout_us)) {
        last_stage = QL_STAGE_CINSTR;
        return QL_ST_TIMEOUT;
    }
    clear_ready();
    if (rx0) {
        *rx0 = QSPI(QSPI_CINSTRDAT0);
    }
    if (rx1) {
        *rx1 = QSPI(QSPI_CINSTRDAT1);
    }
    return QL_ST_OK;
}

uint32_t qspi_rdsr(uint32_t *sr)
{
    uint32_t st = qspi_wait_dma();
    if (st != QL_ST_OK) {
        return st;
    }
    uint32_t v = 0;
    st = cinstr_raw(SPI_RDSR, 1u, 0u, 0u, 0u, CINSTR_TIMEOUT_US, &v, 0);
    *sr = v & 0xFFu;
    return st;
}

static uint32_t poll_interval(uint32_t kind)
{
    uint32_t iv = tm.typ[kind] / 32u;
    if (iv < 10u) {
        iv = 10u;
    }
    if (iv > 50000u) {
        iv = 50000u;
    }
    return iv;
}

static uint32_t max_wait(uint32_t kind)
{
    return tm.max[kind] + tm.max[kind] / 2u + 2000u;
}

uint32_t qspi_settle(void)
{
    uint32_t st = qspi_wait_dma();
    if (st != QL_ST_OK || pend.wip == WIP_NONE) {
        return st;
    }
    uint32_t kind = pend.wip;
    uint32_t interval = poll_interval(kind);
    uint32_t limit = max_wait(kind);
    for (;;) {
        /* the time before the read: busy only counts when a read begun after the deadline
         * still says so (the host may halt the core between the read and the check) */
        uint32_t before = hw_now_us();
        uint32_t sr;
        st = qspi_rdsr(&sr);
        if (st != QL_ST_OK) {
            return st;
        }
        if (!(sr & wip_mask)) {
            pend.wip = WIP_NONE;
            return QL_ST_OK;
        }
        if ((before - pend.wip_start) >= limit) {
            return QL_ST_FLASH_BUSY;
        }
        hw_delay_us(interval);
    }
}

uint32_t qspi_cinstr(uint32_t opcode, uint32_t nbytes, uint32_t tx0, uint32_t tx1, uint32_t flags,
                     uint32_t *rx0, uint32_t *rx1)
{
    uint32_t st = qspi_settle();
    if (st != QL_ST_OK) {
        return st;
    }
    uint32_t conf = 0u;
    uint32_t timeout = CINSTR_TIMEOUT_US;
    if (flags & QL_CF_WREN) {
        conf |= QSPI_CINSTRCONF_WREN;
    }
    if (flags & QL_CF_WIPWAIT) {
        conf |= QSPI_CINSTRCONF_WIPWAIT;
        timeout += max_wait(WIP_64K);
    }
    st = cinstr_raw(opcode, nbytes, tx0, tx1, conf, timeout, rx0, rx1);
    if (st == QL_ST_OK && (flags & QL_CF_WREN)) {
        /* a write-enabled instruction may start internal work (status write, ...) */
        pend.wip = WIP_WRSR;
        pend.wip_start = hw_now_us();
    }
    return st;
}

uint32_t qspi_read_jedec(uint32_t *id)
{
    uint32_t rx = 0;
    uint32_t st = qspi_cinstr(SPI_RDID, 3u, 0u, 0u, 0u, &rx, 0);
    /* byte 0 = manufacturer: report as 0xMMTTCC */
    *id = ((rx & 0xFFu) << 16) | (rx & 0xFF00u) | ((rx >> 16) & 0xFFu);
    return st;
}

uint32_t qspi_sfdp(uint32_t addr, uint8_t *dst, uint32_t len)
{
    uint32_t st = qspi_settle();
    if (st != QL_ST_OK) {
        return st;
    }
    const uint32_t base = SPI_RDSFDP | lio | QSPI_CINSTRCONF_LFEN;
    /* long frame: opcode, then 3 address bytes + 1 dummy byte, then the data */
    st = cinstr_raw(SPI_RDSFDP, 0u, 0u, 0u, QSPI_CINSTRCONF_LFEN, CINSTR_TIMEOUT_US, 0, 0);
    if (st != QL_ST_OK) {
        return st;
    }
    uint32_t a = ((addr >> 16) & 0xFFu) | (addr & 0xFF00u) | ((addr & 0xFFu) << 16);
    QSPI(QSPI_CINSTRDAT0) = a;
    clear_ready();
    uint32_t start = hw_now_us();
    QSPI(QSPI_CINSTRCONF) = base | (5u << 8);
    if (!hw_wait_event(&QSPI(QSPI_EVENTS_READY), start, CINSTR_TIMEOUT_US)) {
        last_stage = QL_STAGE_CINSTR;
        return QL_ST_TIMEOUT;
    }
    while (len > 0u) {
        uint32_t n = len > 8u ? 8u : len;
        uint32_t stop = (n == len) ? QSPI_CINSTRCONF_LFSTOP : 0u;
        clear_ready();
        start = hw_now_us();
        QSPI(QSPI_CINSTRCONF) = base | ((n + 1u) << 8) | stop;
        if (!hw_wait_event(&QSPI(QSPI_EVENTS_READY), start, CINSTR_TIMEOUT_US)) {
            last_stage = QL_STAGE_CINSTR;
            return QL_ST_TIMEOUT;
        }
        uint32_t d0 = QSPI(QSPI_CINSTRDAT0);
        uint32_t d1 = QSPI(QSPI_CINSTRDAT1);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t w = i < 4u ? d0 : d1;
            *dst++ = (uint8_t)(w >> (8u * (i & 3u)));
        }
        len -= n;
    }
    clear_ready();
    return QL_ST_OK;
}

static uint32_t xfer_us(uint32_t nbytes)
{
    /* worst case single-line transfer time of nbytes at SCK, plus slack */
    return (nbytes * 8u) / sck_mhz + 100u;
}

uint32_t qspi_erase_start(uint32_t addr, uint32_t unit)
{
    uint32_t st = qspi_wait_dma(); /* the peripheral waits for the flash itself */
    if (st != QL_ST_OK) {
        return st;
    }
    QSPI(QSPI_ERASE_PTR) = addr;
    QSPI(QSPI_ERASE_LEN) = unit;
    uint32_t kind = unit == QL_ERASE_4K ? WIP_4K : unit == QL_ERASE_64K ? WIP_64K : WIP_CHIP;
    start_task(QSPI_TASKS_ERASESTART, CINSTR_TIMEOUT_US + max_wait(WIP_PAGE), QL_STAGE_ERASE, 0u,
               kind);
    return QL_ST_OK;
}

static void write_chunk(uint32_t addr, const uint8_t *src, uint32_t len, uint32_t buf_mask)
{
    uint32_t pages = (len + page_bytes - 1u) / page_bytes + 1u;
    QSPI(QSPI_WRITE_DST) = addr;
    QSPI(QSPI_WRITE_SRC) = (uint32_t)(uintptr_t)src;
    QSPI(QSPI_WRITE_CNT) = len;
    dma_range(src, len);
    start_task(QSPI_TASKS_WRITESTART, 10000u + pages * (max_wait(WIP_PAGE) + xfer_us(page_bytes)),
               QL_STAGE_WRITE, buf_mask, WIP_PAGE);
}

uint32_t qspi_write_start(uint32_t addr, const uint8_t *src, uint32_t len, uint32_t buf_mask)
{
    uint32_t st = qspi_wait_dma(); /* the peripheral waits for the flash itself */
    if (st != QL_ST_OK) {
        return st;
    }
    /* A transfer that starts inside a page first fills up to the page boundary, so the rest
     * starts page aligned whatever way the peripheral splits it into page programs. */
    uint32_t into = addr % page_bytes;
    if (into != 0u && len > page_bytes - into) {
        uint32_t head = page_bytes - into;
        write_chunk(addr, src, head, buf_mask);
        st = qspi_wait_dma();
        if (st != QL_ST_OK) {
            return st;
        }
        addr += head;
        src += head;
        len -= head;
    }
    write_chunk(addr, src, len, buf_mask);
    return QL_ST_OK;
}

uint32_t qspi_read_start(uint32_t addr, uint8_t *dst, uint32_t len)
{
    QSPI(QSPI_READ_SRC) = addr;
    QSPI(QSPI_READ_DST) = (uint32_t)(uintptr_t)dst;
    QSPI(QSPI_READ_CNT) = len;
    dma_range(dst, len);
    start_task(QSPI_TASKS_READSTART, 10000u + 2u * xfer_us(len), QL_STAGE_READ, 0u, WIP_NONE);
    return QL_ST_OK;
}

/* ---------------------------------------------------------------- init / deinit */

static uint32_t read_reg(uint32_t opcode, uint32_t *v)
{
    uint32_t rx = 0;
    uint32_t st = qspi_cinstr(opcode, 1u, 0u, 0u, 0u, &rx, 0);
    *v = rx & 0xFFu;
    return st;
}

static uint32_t write_reg(uint32_t opcode, uint32_t nbytes, uint32_t data)
{
    uint32_t st = qspi_cinstr(opcode, nbytes, data, 0u, QL_CF_WREN, 0, 0);
    if (st == QL_ST_OK) {
        st = qspi_settle();
    }
    return st;
}

static uint32_t query_addr4(uint32_t *is4)
{
    if (mode_query_op == QL_NO_QUERY) {
        *is4 = (enter_4b == QL_4B_ALWAYS) ? 1u : addr4_now;
        return QL_ST_OK;
    }
    uint32_t v;
    uint32_t st = read_reg(mode_query_op, &v);
    *is4 = (v >> mode_query_bit) & 1u;
    return st;
}

static uint32_t set_addr4(uint32_t on)
{
    uint32_t st = QL_ST_OK;
    switch (enter_4b) {
    case QL_4B_B7:
        st = qspi_cinstr(on ? SPI_EN4B : exit_4b_op, 0u, 0u, 0u, 0u, 0, 0);
        break;
    case QL_4B_WREN_B7:
        st = qspi_cinstr(on ? SPI_EN4B : exit_4b_op, 0u, 0u, 0u, QL_CF_WREN, 0, 0);
        if (st == QL_ST_OK) {
            st = qspi_settle();
        }
        break;
    case QL_4B_BANKREG: {
        uint32_t v;
        st = read_reg(SPI_BRRD, &v);
        if (st == QL_ST_OK) {
            st = qspi_cinstr(SPI_BRWR, 1u, on ? (v | 0x80u) : (v & 0x7Fu), 0u, 0u, 0, 0);
        }
        break;
    }
    case QL_4B_ALWAYS:
        return on ? QL_ST_OK : QL_ST_ADDR4_FAILED;
    default:
        return on ? QL_ST_ADDR4_FAILED : QL_ST_OK;
    }
    if (st != QL_ST_OK) {
        return st;
    }
    addr4_now = on;
    if (mode_query_op != QL_NO_QUERY) {
        uint32_t is4;
        st = query_addr4(&is4);
        if (st == QL_ST_OK && is4 != on) {
            st = QL_ST_ADDR4_FAILED;
        }
    }
    return st;
}

static uint32_t quad_enable(uint32_t method)
{
    uint32_t st;
    uint32_t sr1 = 0, sr2 = 0;
    switch (method) {
    case QL_QE_NONE:
        return QL_ST_OK;
    case QL_QE_S1B6:
        st = read_reg(SPI_RDSR, &sr1);
        if (st != QL_ST_OK || (sr1 & 0x40u)) {
            return st;
        }
        st = write_reg(SPI_WRSR, 1u, sr1 | 0x40u);
        if (st == QL_ST_OK) {
            st = read_reg(SPI_RDSR, &sr1);
        }
        return (st == QL_ST_OK && !(sr1 & 0x40u)) ? QL_ST_QE_FAILED : st;
    case QL_QE_S2B1_V1:
    case QL_QE_S2B1_V4:
    case QL_QE_S2B1_V5:
        st = read_reg(SPI_RDSR, &sr1);
        if (st == QL_ST_OK && method != QL_QE_S2B1_V1) {
            st = read_reg(SPI_RDSR2, &sr2);
        }
        if (st != QL_ST_OK || (sr2 & 0x02u)) {
            return st;
        }
        st = write_reg(SPI_WRSR, 2u, (sr1 & 0xFFu) | ((sr2 | 0x02u) << 8));
        if (st == QL_ST_OK && method != QL_QE_S2B1_V1) {
            st = read_reg(SPI_RDSR2, &sr2);
            if (st == QL_ST_OK && !(sr2 & 0x02u)) {
                st = QL_ST_QE_FAILED;
            }
        }
        return st;
    case QL_QE_S2B7:
        st = read_reg(SPI_RDSR2_B7, &sr2);
        if (st != QL_ST_OK || (sr2 & 0x80u)) {
            return st;
        }
        st = write_reg(SPI_WRSR2_B7, 1u, sr2 | 0x80u);
        if (st == QL_ST_OK) {
            st = read_reg(SPI_RDSR2_B7, &sr2);
        }
        return (st == QL_ST_OK && !(sr2 & 0x80u)) ? QL_ST_QE_FAILED : st;
    case QL_QE_S2B1_V6:
        st = read_reg(SPI_RDSR2, &sr2);
        if (st != QL_ST_OK || (sr2 & 0x02u)) {
            return st;
        }
        st = write_reg(SPI_WRSR2, 1u, sr2 | 0x02u);
        if (st == QL_ST_OK) {
            st = read_reg(SPI_RDSR2, &sr2);
        }
        return (st == QL_ST_OK && !(sr2 & 0x02u)) ? QL_ST_QE_FAILED : st;
    default:
        return QL_ST_CONFIG;
    }
}

static uint32_t pick(uint32_t v, uint32_t def) { return v ? v : def; }

static uint32_t check_config(const struct ql_config *c, uint32_t *sckfreq)
{
    const uint32_t pins[6] = {c->pin_sck, c->pin_csn, c->pin_io0,
                              c->pin_io1, c->pin_io2, c->pin_io3};
    for (uint32_t i = 0; i < 4u; i++) {
        if (pins[i] > 47u) {
            return QL_ST_CONFIG;
        }
    }
    for (uint32_t i = 4u; i < 6u; i++) {
        if (pins[i] > 47u && pins[i] != QL_NO_PIN) {
            return QL_ST_CONFIG;
        }
    }
#if defined(QL_TARGET_NRF5340)
    /* only the dedicated pins can carry QSPI on nRF5340 */
    if (c->pin_sck != QSPI_PIN_SCK || c->pin_csn != QSPI_PIN_CSN || c->pin_io0 != QSPI_PIN_IO0 ||
        c->pin_io1 != QSPI_PIN_IO1 || (c->pin_io2 != QSPI_PIN_IO2 && c->pin_io2 != QL_NO_PIN) ||
        (c->pin_io3 != QSPI_PIN_IO3 && c->pin_io3 != QL_NO_PIN)) {
        return QL_ST_CONFIG;
    }
    const uint32_t base_hz = 96000000u; /* PCLK192M (HFCLK192M /1) / 2 */
#else
    const uint32_t base_hz = 32000000u;
#endif
    if (c->readoc > 4u || c->writeoc > 3u || c->pp_size > 1u || c->sck_delay > 255u ||
        c->rx_delay > 7u || c->spi_mode > 1u || c->addr_mode > 1u ||
        c->enter_4b > QL_4B_ALWAYS || c->exit_4b_op > 0xFFu || c->qe_method > QL_QE_S2B1_V6 ||
        c->n_init > QL_MAX_INIT_INSTR || c->wip_bit > 7u) {
        return QL_ST_CONFIG;
    }
    if (c->flash_size == 0u || (c->flash_size & 0xFFFu) != 0u || c->flash_size > 0x10000000u) {
        return QL_ST_CONFIG;
    }
    int quad = c->readoc >= 3u || c->writeoc >= 2u;
    if (quad && (c->pin_io2 == QL_NO_PIN || c->pin_io3 == QL_NO_PIN)) {
        return QL_ST_CONFIG;
    }
    if (c->addr_mode == QL_ADDR_32BIT && c->enter_4b == QL_4B_NONE) {
        return QL_ST_CONFIG; /* the chip must be put into 4-byte mode (QSPI_FACTS.md §1b) */
    }
    if (c->mode_query_op != QL_NO_QUERY && (c->mode_query_op > 0xFFu || c->mode_query_bit > 7u)) {
        return QL_ST_CONFIG;
    }
    for (uint32_t i = 0; i < c->n_init; i++) {
        if (c->init[i].opcode > 0xFFu || c->init[i].len > 8u) {
            return QL_ST_CONFIG;
        }
    }
    if (c->sck_hz == 0u) {
        return QL_ST_CONFIG;
    }
    uint32_t div = (base_hz + c->sck_hz - 1u) / c->sck_hz; /* fastest SCK <= requested */
    if (div == 0u) {
        div = 1u;
    }
    if (div > 16u) {
        return QL_ST_CONFIG; /* slower than the peripheral can go */
    }
    *sckfreq = div - 1u;
    sck_hz = base_hz / div;
    sck_mhz = sck_hz / 1000000u;
    if (sck_mhz == 0u) {
        sck_mhz = 1u;
    }
    return QL_ST_OK;
}

static void errata_215_43(void)
{
    /* After XIP use, touching registers >= 0x600 may halt the CPU: a dummy ACTIVATE with the
     * pins disconnected first (nrfx qspi_workaround_215_43_apply). Only when the peripheral
     * is already enabled, i.e. the application may have used XIP. */
    uint32_t psel[6];
    static const uint32_t off[6] = {QSPI_PSEL_SCK, QSPI_PSEL_CSN, QSPI_PSEL_IO0,
                                    QSPI_PSEL_IO1, QSPI_PSEL_IO2, QSPI_PSEL_IO3};
    for (uint32_t i = 0; i < 6u; i++) {
        psel[i] = QSPI(off[i]);
        QSPI(off[i]) = 0xFFFFFFFFu;
    }
    clear_ready();
    uint32_t start = hw_now_us();
    QSPI(QSPI_TASKS_ACTIVATE) = 1u;
    (void)hw_wait_event(&QSPI(QSPI_EVENTS_READY), start, ERRATA_TIMEOUT_US);
    clear_ready();
    for (uint32_t i = 0; i < 6u; i++) {
        QSPI(off[i]) = psel[i];
    }
}

static void peripheral_off(void)
{
    QSPI(QSPI_INTENCLR) = 0xFFFFFFFFu;
    QSPI(QSPI_TASKS_DEACTIVATE) = 1u;
#if defined(QL_TARGET_NRF52840)
    QSPI(QSPI_ERRATA_122_REG) = 1u; /* erratum 122: current consumption after disable */
#endif
    QSPI(QSPI_ENABLE) = 0u;
    clear_ready();
    QSPI(QSPI_PSEL_SCK) = 0xFFFFFFFFu;
    QSPI(QSPI_PSEL_CSN) = 0xFFFFFFFFu;
    QSPI(QSPI_PSEL_IO0) = 0xFFFFFFFFu;
    QSPI(QSPI_PSEL_IO1) = 0xFFFFFFFFu;
    QSPI(QSPI_PSEL_IO2) = 0xFFFFFFFFu;
    QSPI(QSPI_PSEL_IO3) = 0xFFFFFFFFu;
    pend.dma = 0u;
    pend.dma_bufs = 0u;
    pend.wip = WIP_NONE;
    pend.wip_next = WIP_NONE;
    hw_pins_restore();
    hw_clocks_restore();
}

static uint32_t init_fail(uint32_t st)
{
    peripheral_off();
    inited = 0u;
    return st;
}

uint32_t qspi_init(const struct ql_config *c, uint32_t *jedec_id)
{
    uint32_t sckfreq = 0;
    *jedec_id = 0u;
    if (inited) {
        uint32_t st = qspi_deinit();
        if (st != QL_ST_OK) {
            return st;
        }
    }
    uint32_t st = check_config(c, &sckfreq);
    if (st != QL_ST_OK) {
        return st;
    }
    flash_size = c->flash_size;
    addr_mode = c->addr_mode;
    page_bytes = c->pp_size ? 512u : 256u;
    enter_4b = c->enter_4b;
    exit_4b_op = c->exit_4b_op ? c->exit_4b_op : SPI_EX4B;
    mode_query_op = c->mode_query_op;
    mode_query_bit = c->mode_query_bit;
    addr4_now = (enter_4b == QL_4B_ALWAYS) ? 1u : 0u;
    wip_mask = 1u << c->wip_bit;
    lio = ((c->flags & QL_CFG_IO2_LOW) ? 0u : QSPI_CINSTRCONF_LIO2) |
          ((c->flags & QL_CFG_IO3_LOW) ? 0u : QSPI_CINSTRCONF_LIO3);
    tm.typ[WIP_PAGE] = pick(c->t_page_typ_us, QL_DEF_PAGE_TYP_US);
    tm.max[WIP_PAGE] = pick(c->t_page_max_us, QL_DEF_PAGE_MAX_US);
    tm.typ[WIP_4K] = pick(c->t_4k_typ_us, QL_DEF_4K_TYP_US);
    tm.max[WIP_4K] = pick(c->t_4k_max_us, QL_DEF_4K_MAX_US);
    tm.typ[WIP_64K] = pick(c->t_64k_typ_us, QL_DEF_64K_TYP_US);
    tm.max[WIP_64K] = pick(c->t_64k_max_us, QL_DEF_64K_MAX_US);
    tm.typ[WIP_CHIP] = pick(c->t_chip_typ_us, QL_DEF_CHIP_TYP_US);
    tm.max[WIP_CHIP] = pick(c->t_chip_max_us, QL_DEF_CHIP_MAX_US);
    tm.typ[WIP_WRSR] = pick(c->t_wrsr_max_us, QL_DEF_WRSR_MAX_US) / 8u;
    tm.max[WIP_WRSR] = pick(c->t_wrsr_max_us, QL_DEF_WRSR_MAX_US);
    for (uint32_t k = WIP_PAGE; k <= WIP_WRSR; k++) {
        if (tm.max[k] > QL_DEF_CHIP_MAX_US) {
            tm.max[k] = QL_DEF_CHIP_MAX_US; /* keep deadlines inside the timer's 32-bit wrap */
        }
    }

    if (hw_clocks_setup() != 0) {
        hw_clocks_restore();
        return QL_ST_CLOCK;
    }
    const uint32_t pins[6] = {c->pin_sck, c->pin_csn, c->pin_io0,
                              c->pin_io1, c->pin_io2, c->pin_io3};
    hw_pins_setup(pins);
    QSPI(QSPI_INTENSET) = 1u; /* READY wakes WFI (PRIMASK keeps the handler from running) */
    if (QSPI(QSPI_ENABLE) & 1u) {
        errata_215_43();
    }
    QSPI(QSPI_PSEL_SCK) = c->pin_sck;
    QSPI(QSPI_PSEL_CSN) = c->pin_csn;
    QSPI(QSPI_PSEL_IO0) = c->pin_io0;
    QSPI(QSPI_PSEL_IO1) = c->pin_io1;
    QSPI(QSPI_PSEL_IO2) = c->pin_io2;
    QSPI(QSPI_PSEL_IO3) = c->pin_io3;
    uint32_t if0 = c->readoc | (c->writeoc << 3) | (c->addr_mode << 6) | (c->pp_size << 12);
    uint32_t rxd = c->rx_delay;
    if (hw_errata_121()) {
        /* nRF5340 erratum 121 (nrfx qspi_configure): bit 16 always, bit 17 at full speed */
        if0 |= 1u << 16;
        if (sckfreq == 0u) {
            if0 |= 1u << 17;
        }
        rxd = 6u;
    }
    QSPI(QSPI_IFCONFIG0) = if0;
    QSPI(QSPI_IFCONFIG1) = (QSPI(QSPI_IFCONFIG1) & 0x00FFFF00u) | c->sck_delay |
                           (c->spi_mode << 25) | (sckfreq << 28);
    QSPI(QSPI_IFTIMING) = rxd << 8;
    QSPI(QSPI_ADDRCONF) = QSPI_ADDRCONF_RESET; /* no instruction at ACTIVATE: we send EN4B */
    QSPI(QSPI_ENABLE) = 1u;
    pend.dma = 0u;
    pend.wip = WIP_NONE;
    pend.wip_next = WIP_NONE;
    /* ACTIVATE polls the flash until WIP = 0: allow for an erase left running earlier */
    start_task(QSPI_TASKS_ACTIVATE, ACTIVATE_BASE_TIMEOUT_US + max_wait(WIP_64K),
               QL_STAGE_ACTIVATE, 0u, WIP_NONE);
    st = qspi_wait_dma();
    if (st != QL_ST_OK) {
        return init_fail(st);
    }
    st = qspi_read_jedec(jedec_id);
    if (st != QL_ST_OK) {
        return init_fail(st);
    }
    if (*jedec_id == 0u || *jedec_id == 0xFFFFFFu) {
        return init_fail(QL_ST_NO_FLASH);
    }
    if (c->expected_jedec != 0u && c->expected_jedec != *jedec_id) {
        return init_fail(QL_ST_JEDEC_MISMATCH);
    }
    st = query_addr4(&addr4_before);
    if (st != QL_ST_OK) {
        return init_fail(st);
    }
    addr4_now = addr4_before;
    for (uint32_t i = 0; i < c->n_init; i++) {
        const struct ql_init_instr *ii = &c->init[i];
        uint32_t fl = ((ii->flags & QL_II_WREN) ? QL_CF_WREN : 0u) |
                      ((ii->flags & QL_II_WIPWAIT) ? QL_CF_WIPWAIT : 0u);
        st = qspi_cinstr(ii->opcode, ii->len, ii->data[0], ii->data[1], fl, 0, 0);
        if (st == QL_ST_OK) {
            st = qspi_settle();
        }
        if (st != QL_ST_OK) {
            return init_fail(st);
        }
    }
    int quad = c->readoc >= 3u || c->writeoc >= 2u;
    if (quad && !(c->flags & QL_CFG_SKIP_QE)) {
        st = quad_enable(c->qe_method);
        if (st != QL_ST_OK) {
            return init_fail(st);
        }
    }
    uint32_t want4 = c->addr_mode == QL_ADDR_32BIT;
    if (want4 != addr4_now || (want4 && mode_query_op == QL_NO_QUERY)) {
        st = set_addr4(want4);
        if (st != QL_ST_OK) {
            return init_fail(st);
        }
    }
    inited = 1u;
    return QL_ST_OK;
}

uint32_t qspi_deinit(void)
{
    if (!inited) {
        return QL_ST_OK;
    }
    uint32_t st = qspi_settle();
    if (st == QL_ST_OK && addr4_now != addr4_before) {
        st = set_addr4(addr4_before);
    }
    if (st == QL_ST_OK) {
        st = qspi_settle();
    }
    peripheral_off();
    inited = 0u;
    return st;
}
