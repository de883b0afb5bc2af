/* crc32.c - CRC-32, table-driven "slicing by 8" (eight bytes per step, ~3 instructions a byte,
 * so summing nearly keeps up with quad SPI reads at 32 MHz SCK on a 64 MHz core). The tables are
 * built on first use in no-init RAM (not part of the downloaded image; only the ready flag is
 * loaded data), so the loader needs no start-up code. */
#include "crc32.h"

#include "chip.h"

typedef uint32_t __attribute__((may_alias)) word_alias;

QL_NOINIT static uint32_t table[8][256];
QL_DATA static uint32_t table_ready;

static void build_table(void)
{
    for (uint32_t i = 0; i < 256u; i++) {
        uint32_t c = i;
        for (uint32_t k = 0; k < 8u; k++) {
            c = (c & 1u) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
        }
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256u; i++) {
        uint32_t c = table[0][i];
        for (uint32_t k = 1; k < 8u; k++) {
            c = table[0][c & 0xFFu] ^ (c >> 8);
            table[k][i] = c;
        }
    }
    table_ready = 1u;
}

uint32_t crc32_update(uint32_t crc, const uint8_t *p, uint32_t n)
{
    if (!table_ready) {
        build_table();
    }
    while (n > 0u && ((uintptr_t)p & 3u) != 0u) {
        crc = table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
        n--;
    }
    const word_alias *w = (const word_alias *)p;
    /* one base register per table: each lookup is a single indexed load */
    const uint32_t *t0 = table[0], *t1 = table[1], *t2 = table[2], *t3 = table[3];
    const uint32_t *t4 = table[4], *t5 = table[5], *t6 = table[6], *t7 = table[7];
    const word_alias *end = w + (n / 8u) * 2u;
    while (w != end) {
        uint32_t lo = w[0] ^ crc; /* little-endian: byte 0 is the low byte */
        uint32_t hi = w[1];
        w += 2;
        crc = t7[lo & 0xFFu] ^ t6[(lo >> 8) & 0xFFu] ^ t5[(lo >> 16) & 0xFFu] ^ t4[lo >> 24] ^
              t3[hi & 0xFFu] ^ t2[(hi >> 8) & 0xFFu] ^ t1[(hi >> 16) & 0xFFu] ^ t0[hi >> 24];
    }
    n %= 8u;
    p = (const uint8_t *)w;
    while (n > 0u) {
        crc = table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
        n--;
    }
    return crc;
}
