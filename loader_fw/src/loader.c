/* loader.c - the mailbox: greeting, command queue, validation, buffers. */
#include "chip.h"
#include "crc32.h"
#include "lz4.h"
#include "hw.h"
#include "loader.h"
#include "qspi.h"
#include "qspi_mailbox.h"

#define MIB16 0x1000000u

/* The mailbox the host finds by this symbol name (never by a fixed address). */
__attribute__((used, aligned(4))) QL_DATA struct ql_mailbox qspi_mailbox;

QL_DATA static uint32_t skip_gen;    /* commands of this gen after a failure are skipped */
QL_DATA static uint32_t skipping;
QL_DATA static uint32_t running_seq; /* index + 1 of the command being run */

static uint8_t *buf_addr(uint32_t i) { return ql_buffer_mem + i * QL_BUF_SIZE; }

static uint32_t free_mask(void)
{
    uint32_t all = (QL_NBUF >= 32u) ? 0xFFFFFFFFu : ((1u << QL_NBUF) - 1u);
    return all & ~qspi_dma_mask();
}

void ql_publish_buffers(void)
{
    struct ql_mailbox *mb = &qspi_mailbox;
    uint32_t fm = free_mask();
    mb->free_mask = fm;
    for (uint32_t i = 0; i < QL_NBUF; i++) {
        mb->buffer[i].state = (fm & (1u << i)) ? QL_BUF_FREE : QL_BUF_DMA;
    }
}

void ql_tick(void)
{
    struct ql_mailbox *mb = &qspi_mailbox;
    uint32_t now = hw_now_us();
    mb->time_us = now;
    mb->busy = qspi_busy();
    /* The newest command queued: when its gen is new, the host wrote it and let the core run. */
    uint32_t i = mb->done_seq;
    uint32_t gen = mb->host_seen;
    for (uint32_t n = 0; n < QL_MAX_CMDS && mb->cmd[i % QL_MAX_CMDS].tag == i + 1u; n++, i++) {
        gen = mb->cmd[i % QL_MAX_CMDS].gen;
    }
    if (gen != mb->host_seen) {
        mb->host_seen = gen;
        mb->resume_us = now;
    }
    qspi_ready_info(&mb->ready_seq, &mb->ready_us);
}

static void publish(void)
{
    struct ql_mailbox *mb = &qspi_mailbox;
    ql_publish_buffers();
    mb->busy = qspi_busy();
    mb->canary = ql_stack_mem[0];
    ql_tick();
}

static void greet(void)
{
    struct ql_mailbox *mb = &qspi_mailbox;
    mb->abi_version = QL_ABI_VERSION;
    mb->build_id = qspi_loader_build_id;
    mb->chip = QL_CHIP_ID;
    mb->nbuffers = QL_NBUF;
    mb->max_cmds = QL_MAX_CMDS;
    mb->stack_base = (uint32_t)(uintptr_t)ql_stack_mem;
    mb->max_dma = QSPI_CNT_MAX;
    mb->heartbeat_us = QL_HEARTBEAT_US;
    mb->entry_us = hw_now_us();
    for (uint32_t i = 0; i < QL_MAX_BUFFERS; i++) {
        mb->buffer[i].addr = i < QL_NBUF ? (uint32_t)(uintptr_t)buf_addr(i) : 0u;
        mb->buffer[i].size = i < QL_NBUF ? QL_BUF_SIZE : 0u;
    }
    mb->magic = QL_MAGIC;
}

/* ------------------------------------------------------------------ validation helpers */

static uint32_t check_range(uint32_t addr, uint32_t len)
{
    uint32_t size = qspi_flash_size();
    if (addr >= size || len > size - addr) {
        return QL_ST_RANGE;
    }
    if (qspi_addr_mode() == QL_ADDR_24BIT && (addr >= MIB16 || len > MIB16 - addr)) {
        return QL_ST_ADDR_24BIT;
    }
    return QL_ST_OK;
}

/* Buffer space the previous task's EasyDMA still accesses is waited for (READY), never
 * touched. */
static uint32_t wait_range(const uint8_t *p, uint32_t len)
{
    if (!qspi_dma_overlaps(p, len)) {
        return QL_ST_OK;
    }
    uint32_t st = qspi_wait_dma();
    if (st == QL_ST_OK && qspi_dma_overlaps(p, len)) {
        st = QL_ST_BUF_BUSY;
    }
    return st;
}

static uint32_t check_buf(const struct ql_cmd *c, uint32_t len, uint32_t align)
{
    if (c->buf >= QL_NBUF || c->buf_off > QL_BUF_SIZE || len > QL_BUF_SIZE - c->buf_off) {
        return QL_ST_BUF_RANGE;
    }
    if ((c->buf_off % align) != 0u) {
        return QL_ST_ALIGN;
    }
    return wait_range(buf_addr(c->buf) + c->buf_off, len);
}

/* A run of data starting in buffer `buf` at `off` that may continue into the following
 * buffers (EasyDMA reads one contiguous range): within the buffer area and not in EasyDMA use.
 * *mask receives the buffers it covers. */
static uint32_t check_span(uint32_t buf, uint32_t off, uint32_t len, uint32_t *mask)
{
    if (buf >= QL_NBUF || off >= QL_BUF_SIZE || len == 0u ||
        len > (QL_NBUF - buf) * QL_BUF_SIZE - off) {
        return QL_ST_BUF_RANGE;
    }
    if ((off & 3u) != 0u) {
        return QL_ST_ALIGN;
    }
    uint32_t last = buf + (off + len - 1u) / QL_BUF_SIZE;
    uint32_t top = last >= 31u ? 0xFFFFFFFFu : ((1u << (last + 1u)) - 1u);
    *mask = top & ~((1u << buf) - 1u);
    return wait_range(buf_addr(buf) + off, len);
}

/* ------------------------------------------------------------------ commands */

/* A read-ahead pass over flash spans: each span is read into scratch while the one before it
 * is summed. `next` gives the spans in order (0: no more), `sum` takes each one's bytes. */
struct pass {
    int (*next)(struct pass *p, uint32_t *a, uint32_t *n);
    void (*sum)(struct pass *p, uint32_t a, const uint8_t *data, uint32_t n);
};

static uint32_t read_ahead(struct pass *p)
{
    uint32_t a, n;
    if (!p->next(p, &a, &n)) {
        return QL_ST_OK;
    }
    uint32_t k = 0;
    qspi_read_start(a, ql_scratch_mem[0], n);
    for (;;) {
        uint32_t st = qspi_wait_dma();
        if (st != QL_ST_OK) {
            return st;
        }
        uint32_t sa = a, sn = n;
        int more = p->next(p, &a, &n);
        if (more) {
            qspi_read_start(a, ql_scratch_mem[k ^ 1u], n);
        }
        p->sum(p, sa, ql_scratch_mem[k], sn);
        if (!more) {
            return QL_ST_OK;
        }
        k ^= 1u;
    }
}

/* Scratch-sized chunks of [a, end), the first member of the passes that read a whole range. */
struct chunks {
    struct pass pass;
    uint32_t a, end;
};

static int next_chunk(struct pass *p, uint32_t *a, uint32_t *n)
{
    struct chunks *c = (struct chunks *)p;
    if (c->a >= c->end) {
        return 0;
    }
    *a = c->a;
    *n = c->end - c->a < QL_SCRATCH_BYTES ? c->end - c->a : QL_SCRATCH_BYTES;
    c->a += *n;
    return 1;
}

/* One CRC-32 of [addr, end), read as whole words. */
struct range_crc {
    struct chunks chunks;
    uint32_t addr, end, crc;
};

static void sum_range(struct pass *p, uint32_t a, const uint8_t *data, uint32_t n)
{
    struct range_crc *r = (struct range_crc *)p;
    uint32_t lo = a < r->addr ? r->addr - a : 0u;
    uint32_t hi = a + n > r->end ? r->end - a : n;
    r->crc = crc32_update(r->crc, data + lo, hi - lo);
}

static uint32_t crc_range(uint32_t addr, uint32_t len, uint32_t *out)
{
    uint32_t st = qspi_settle();
    if (st != QL_ST_OK) {
        return st;
    }
    struct range_crc r = {{{next_chunk, sum_range}, addr & ~3u, (addr + len + 3u) & ~3u},
                          addr, addr + len, 0xFFFFFFFFu};
    st = read_ahead(&r.chunks.pass);
    if (st == QL_ST_OK) {
        *out = ~r.crc;
    }
    return st;
}

/* One CRC per sector over [addr, addr + count * sector), word aligned, the flash settled: one
 * read-ahead stream over the whole range in scratch-sized chunks; sectors may end inside a
 * chunk. */
struct sector_crcs {
    struct chunks chunks;
    uint32_t sector, left, crc, i; /* left: bytes of sector i not yet summed */
    uint32_t *out;
};

static void sum_sectors(struct pass *p, uint32_t a, const uint8_t *data, uint32_t n)
{
    struct sector_crcs *s = (struct sector_crcs *)p;
    (void)a;
    while (n > 0u) {
        uint32_t piece = n < s->left ? n : s->left;
        s->crc = crc32_update(s->crc, data, piece);
        data += piece;
        n -= piece;
        s->left -= piece;
        if (s->left == 0u) {
            s->out[s->i++] = ~s->crc;
            s->crc = 0xFFFFFFFFu;
            s->left = s->sector;
        }
    }
}

static uint32_t crc_sectors(uint32_t addr, uint32_t sector, uint32_t count, uint32_t *out)
{
    struct sector_crcs s = {{{next_chunk, sum_sectors}, addr, addr + sector * count},
                            sector, sector, 0xFFFFFFFFu, 0u, out};
    return read_ahead(&s.chunks.pass);
}

/* The sectors of a CRC_LIST with QL_CF_PREFIX or QL_CF_REST as flash spans to read: every
 * sector's first `prefix` bytes, or the rest of each sector whose bit is set, in scratch-sized
 * pieces. */
struct sector_walk {
    struct pass pass;
    uint32_t addr, sector, count, prefix;
    uint32_t *words;  /* one CRC-32 per sector (see QL_OP_CRC_LIST) */
    uint32_t *bits;   /* the bitmap behind them */
    uint32_t rests;   /* 0: the prefixes, 1: the rests */
    uint32_t i, pos;  /* next sector, and bytes of its rest already given out */
};

static uint32_t bit(const uint32_t *bits, uint32_t i)
{
    return (bits[i / 32u] >> (i % 32u)) & 1u;
}

static int next_span(struct pass *p, uint32_t *a, uint32_t *n)
{
    struct sector_walk *w = (struct sector_walk *)p;
    while (w->rests && w->i < w->count && !bit(w->bits, w->i)) {
        w->i++;
    }
    if (w->i >= w->count) {
        return 0;
    }
    if (!w->rests) {
        *a = w->addr + w->i++ * w->sector;
        *n = w->prefix;
        return 1;
    }
    uint32_t left = w->sector - w->prefix - w->pos;
    *a = w->addr + w->i * w->sector + w->prefix + w->pos;
    *n = left < QL_SCRATCH_BYTES ? left : QL_SCRATCH_BYTES;
    w->pos += *n;
    if (w->pos == w->sector - w->prefix) {
        w->i++;
        w->pos = 0u;
    }
    return 1;
}

static void sum_span(struct pass *p, uint32_t a, const uint8_t *data, uint32_t n)
{
    struct sector_walk *w = (struct sector_walk *)p;
    uint32_t i = (a - w->addr) / w->sector; /* a span never leaves its sector */
    if (w->rests) { /* continues the sector's CRC-32 (a finished CRC-32, inverted back) */
        w->words[i] = ~crc32_update(~w->words[i], data, n);
        return;
    }
    uint32_t crc = ~crc32_update(0xFFFFFFFFu, data, n);
    if (crc == w->words[i]) {
        w->bits[i / 32u] |= 1u << (i % 32u);
    } else {
        w->words[i] = crc;
    }
}

static uint32_t cmd_erase(struct ql_cmd *c)
{
    uint32_t unit = c->arg;
    if (unit == QL_ERASE_CHIP) {
        if (c->addr != 0u || c->len != qspi_flash_size()) {
            return QL_ST_BAD_ARG;
        }
        uint32_t st = qspi_erase_start(0u, QL_ERASE_CHIP);
        return st;
    }
    if (unit != QL_ERASE_4K && unit != QL_ERASE_64K) {
        return QL_ST_BAD_ARG;
    }
    if (c->len == 0u) {
        return QL_ST_BAD_ARG;
    }
    uint32_t blk = unit == QL_ERASE_4K ? 0x1000u : 0x10000u;
    if ((c->addr & (blk - 1u)) != 0u || (c->len & (blk - 1u)) != 0u) {
        return QL_ST_ALIGN;
    }
    uint32_t st = check_range(c->addr, c->len);
    for (uint32_t a = c->addr; st == QL_ST_OK && a < c->addr + c->len; a += blk) {
        st = qspi_erase_start(a, unit);
    }
    return st;
}

static uint32_t check_program(struct ql_cmd *c);

/* Program and read move data by EasyDMA between a buffer and the flash: word-aligned, a
 * multiple of 4 bytes, inside the chip and inside the named buffer. */
static uint32_t check_dma_transfer(struct ql_cmd *c)
{
    uint32_t st = check_program(c);
    if (st == QL_ST_OK) {
        st = check_buf(c, c->len, 4u);
    }
    return st;
}

static uint32_t check_program(struct ql_cmd *c)
{
    if (c->len == 0u) {
        return QL_ST_BAD_ARG;
    }
    if ((c->addr & 3u) != 0u || (c->len & 3u) != 0u) {
        return QL_ST_ALIGN;
    }
    return check_range(c->addr, c->len);
}

/* PROGRAM from an LZ4 block: decode into buffer arg2 (checked like any EasyDMA source), check
 * length and CRC-32 of what came out, and only then program it. */
static uint32_t cmd_program_lz4(struct ql_cmd *c)
{
    uint32_t src_mask, dst_mask;
    uint32_t st = check_program(c);
    if (st == QL_ST_OK) {
        st = check_span(c->buf, c->buf_off, c->arg, &src_mask);
    }
    if (st == QL_ST_OK) { /* arg2: a byte offset into the buffer area */
        st = check_span(c->arg2 / QL_BUF_SIZE, c->arg2 % QL_BUF_SIZE, c->len, &dst_mask);
    }
    uint32_t src = c->buf * QL_BUF_SIZE + c->buf_off;
    if (st == QL_ST_OK && src < c->arg2 + c->len && c->arg2 < src + c->arg) {
        st = QL_ST_BAD_ARG; /* decoding must not overwrite its own input */
    }
    if (st != QL_ST_OK) {
        return st;
    }
    uint8_t *dst = ql_buffer_mem + c->arg2;
    uint32_t n = lz4_decode(buf_addr(c->buf) + c->buf_off, c->arg, dst, c->len);
    if (n != c->len || ~crc32_update(0xFFFFFFFFu, dst, n) != c->arg3) {
        return QL_ST_CORRUPT;
    }
    return qspi_write_start(c->addr, dst, c->len, dst_mask);
}

static uint32_t cmd_program(struct ql_cmd *c)
{
    if (c->flags & QL_CF_LZ4) {
        return cmd_program_lz4(c);
    }
    uint32_t mask;
    uint32_t st = check_program(c);
    if (st == QL_ST_OK) {
        st = check_span(c->buf, c->buf_off, c->len, &mask);
    }
    if (st == QL_ST_OK) {
        st = qspi_write_start(c->addr, buf_addr(c->buf) + c->buf_off, c->len, mask);
    }
    return st;
}

static uint32_t cmd_read(struct ql_cmd *c)
{
    uint32_t st = check_dma_transfer(c);
    if (st == QL_ST_OK) {
        st = qspi_settle();
    }
    if (st == QL_ST_OK) {
        qspi_read_start(c->addr, buf_addr(c->buf) + c->buf_off, c->len);
        st = qspi_wait_dma();
    }
    return st;
}

static uint32_t cmd_crc_list(struct ql_cmd *c)
{
    uint32_t sector = c->arg;
    uint32_t walk = c->flags & (QL_CF_PREFIX | QL_CF_REST);
    uint32_t prefix = walk ? c->arg2 : 0u;
    if (sector == 0u || c->len == 0u || (c->flags & ~walk) != 0u ||
        walk == (QL_CF_PREFIX | QL_CF_REST) || (walk && (prefix == 0u || prefix >= sector))) {
        return QL_ST_BAD_ARG;
    }
    if ((sector & 3u) != 0u || (c->addr & 3u) != 0u || (c->len % sector) != 0u ||
        (prefix & 3u) != 0u) {
        return QL_ST_ALIGN;
    }
    uint32_t count = c->len / sector;
    uint32_t words = walk ? count + (count + 31u) / 32u : count; /* + the bitmap */
    uint32_t st = check_range(c->addr, c->len);
    if (st == QL_ST_OK) {
        st = count > QL_BUF_SIZE / 4u ? QL_ST_BUF_RANGE : check_buf(c, words * 4u, 4u);
    }
    if (st == QL_ST_OK) {
        st = qspi_settle();
    }
    if (st != QL_ST_OK) {
        return st;
    }
    uint32_t *out = (uint32_t *)(void *)(buf_addr(c->buf) + c->buf_off);
    if (!walk) {
        return crc_sectors(c->addr, sector, count, out);
    }
    /* A sector whose first bytes differ from the image is rewritten whatever the rest holds:
     * the skip-unchanged test of a changed image reads a fraction of it. */
    struct sector_walk w = {{next_span, sum_span}, c->addr, sector, count, prefix, out,
                            out + count, walk == QL_CF_REST, 0u, 0u};
    if (walk == QL_CF_PREFIX) {
        for (uint32_t j = 0; j < (count + 31u) / 32u; j++) {
            w.bits[j] = 0u;
        }
    }
    st = read_ahead(&w.pass);
    c->result0 = 0u; /* bits set */
    for (uint32_t j = 0; j < count; j++) {
        c->result0 += bit(w.bits, j);
    }
    return st;
}

static uint32_t cmd_sfdp(struct ql_cmd *c)
{
    if (c->len == 0u) {
        return QL_ST_BAD_ARG;
    }
    if (c->addr >= MIB16 || c->len > MIB16 - c->addr) {
        return QL_ST_RANGE; /* SFDP space has 3-byte addresses */
    }
    uint32_t st = check_buf(c, c->len, 1u);
    if (st == QL_ST_OK) {
        st = qspi_sfdp(c->addr, buf_addr(c->buf) + c->buf_off, c->len);
    }
    return st;
}

static uint32_t cmd_cinstr(struct ql_cmd *c)
{
    if (c->addr > 0xFFu || c->len > 8u ||
        (c->flags & ~(QL_CF_WREN | QL_CF_WIPWAIT)) != 0u) {
        return QL_ST_BAD_ARG;
    }
    return qspi_cinstr(c->addr, c->len, c->arg, c->arg2, c->flags, &c->result0, &c->result1);
}

static uint32_t execute(struct ql_cmd *c)
{
    struct ql_mailbox *mb = &qspi_mailbox;
    uint32_t st;
    switch (c->op) {
    case QL_OP_NOP:
        return QL_ST_OK;
    case QL_OP_INIT:
        st = qspi_init(&mb->config, &c->result0);
        mb->jedec_id = c->result0;
        mb->sck_hz = qspi_sck_hz();
        mb->addr4_before = qspi_addr4_before();
        c->result1 = mb->sck_hz;
        return st;
    case QL_OP_DEINIT:
        return qspi_deinit();
    case QL_OP_WAIT_IDLE:
        return qspi_initialised() ? qspi_settle() : QL_ST_OK;
    default:
        break;
    }
    if (c->op >= QL_OP_COUNT) {
        return QL_ST_BAD_OP;
    }
    if (!qspi_initialised()) {
        return QL_ST_NOT_INIT;
    }
    switch (c->op) {
    case QL_OP_READ_ID:
        return qspi_read_jedec(&c->result0);
    case QL_OP_SFDP:
        return cmd_sfdp(c);
    case QL_OP_ERASE:
        st = cmd_erase(c);
        break;
    case QL_OP_PROGRAM:
        st = cmd_program(c);
        break;
    case QL_OP_READ:
        return cmd_read(c);
    case QL_OP_CRC32:
        if (c->len == 0u) {
            return QL_ST_BAD_ARG;
        }
        st = check_range(c->addr, c->len);
        return st == QL_ST_OK ? crc_range(c->addr, c->len, &c->result0) : st;
    case QL_OP_CRC_LIST:
        return cmd_crc_list(c);
    case QL_OP_CINSTR:
        return cmd_cinstr(c);
    case QL_OP_RDSR:
        return qspi_rdsr(&c->result0);
    default:
        return QL_ST_BAD_OP;
    }
    if (st == QL_ST_OK && !(c->flags & QL_CF_SYNC)) {
        publish(); /* the buffers of a task left running are taken from now on */
    }
    if (st == QL_ST_OK && (c->flags & QL_CF_SYNC)) {
        st = qspi_settle();
    }
    return st;
}

/* Leave: flash idle, VTOR, NVIC lines and timer as found; then sleep until halted. */
static void leave(uint32_t old_vtor)
{
    struct ql_mailbox *mb = &qspi_mailbox;
    if (qspi_initialised()) {
        (void)qspi_settle();
    }
    publish();
    hw_irqs_disable();
    hw_timer_stop();
    REG32(SCB_VTOR) = old_vtor;
    mb->state = QL_STATE_EXITED;
    for (;;) {
        hw_sleep_forever();
    }
}

/* Run the command at done_seq (or skip it: an earlier one failed with it queued). */
static void run_one(uint32_t old_vtor)
{
    struct ql_mailbox *mb = &qspi_mailbox;
    uint32_t index = mb->done_seq;
    struct ql_cmd *c = &mb->cmd[index % QL_MAX_CMDS];
    c->result0 = 0u;
    c->result1 = 0u;
    if (skipping && c->gen == skip_gen) {
        c->status = QL_ST_SKIPPED;
    } else if (c->op == QL_OP_EXIT) {
        c->status = QL_ST_OK;
        c->done_us = hw_now_us();
        mb->done_seq = index + 1u;
        leave(old_vtor);
    } else {
        running_seq = index + 1u;
        qspi_set_owner(running_seq);
        c->status = execute(c);
        if (c->status == QL_ST_TIMEOUT) {
            c->result0 = qspi_last_stage();
        }
        mb->last_status = c->status;
        if (c->status != QL_ST_OK) {
            skipping = 1u; /* the rest of what the host queued with it is skipped */
            skip_gen = c->gen;
            mb->state = QL_STATE_ERROR;
            mb->fail_seq = index + 1u;
            mb->fail_count++;
        } else {
            mb->state = qspi_initialised() ? QL_STATE_READY : QL_STATE_IDLE;
            skipping = 0u;
        }
    }
    c->done_us = hw_now_us();
    mb->done_us = c->done_us;
    mb->done_seq = index + 1u;
}

void ql_main(void)
{
    struct ql_mailbox *mb = &qspi_mailbox;
    uint32_t old_vtor = REG32(SCB_VTOR);
    REG32(SCB_VTOR) = (uint32_t)(uintptr_t)ql_vectors;
    ql_stack_mem[0] = QL_CANARY;
    hw_timer_start();
    hw_irqs_enable();
    skipping = 0u;
    mb->state = qspi_initialised() ? QL_STATE_READY : QL_STATE_IDLE;
    greet();
    for (;;) {
        qspi_poll();
        publish();
        if (mb->cmd[mb->done_seq % QL_MAX_CMDS].tag == mb->done_seq + 1u) {
            run_one(old_vtor);
            continue;
        }
        mb->idle = 1u;
        hw_idle_wait(QL_HEARTBEAT_US); /* flash READY or the heartbeat wakes it */
        mb->idle = 0u;
    }
}
