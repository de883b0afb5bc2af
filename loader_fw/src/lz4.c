/* lz4.c - a small, bounds-checked decoder for the LZ4 block format.
 *
 * Each sequence: a token (high nibble: literal count, low nibble: match length - 4; 15 means
 * more bytes follow, each added, until one below 255), the literals, then - except in the last
 * sequence, which ends the block after its literals - a 2-byte little-endian offset back into
 * the output and the match's extra length bytes. Every length and offset is checked against
 * what is left of the input and the output before anything is copied. */
#include "lz4.h"

/* Read an extended length (after a nibble of 15); LZ4_ERROR past the input or beyond `limit`. */
static uint32_t more_length(const uint8_t *src, uint32_t src_len, uint32_t *ip, uint32_t len,
                            uint32_t limit)
{
    for (;;) {
        if (*ip >= src_len) {
            return LZ4_ERROR;
        }
        uint32_t b = src[(*ip)++];
        len += b;
        if (len > limit) {
            return LZ4_ERROR;
        }
        if (b != 255u) {
            return len;
        }
    }
}

uint32_t lz4_decode(const uint8_t *src, uint32_t src_len, uint8_t *dst, uint32_t dst_cap)
{
    uint32_t ip = 0u;
    uint32_t op = 0u;
    if (src_len == 0u) {
        return LZ4_ERROR;
    }
    for (;;) {
        if (ip >= src_len) {
            return LZ4_ERROR;
        }
        uint32_t token = src[ip++];
        uint32_t lit = token >> 4;
        if (lit == 15u) {
            lit = more_length(src, src_len, &ip, lit, dst_cap - op);
            if (lit == LZ4_ERROR) {
                return LZ4_ERROR;
            }
        }
        if (lit > src_len - ip || lit > dst_cap - op) {
            return LZ4_ERROR;
        }
        for (uint32_t i = 0; i < lit; i++) {
            dst[op + i] = src[ip + i];
        }
        ip += lit;
        op += lit;
        if (ip == src_len) {
            return op; /* the last sequence: literals only */
        }
        if (src_len - ip < 2u) {
            return LZ4_ERROR;
        }
        uint32_t offset = (uint32_t)src[ip] | ((uint32_t)src[ip + 1u] << 8);
        ip += 2u;
        if (offset == 0u || offset > op) {
            return LZ4_ERROR;
        }
        uint32_t match = (token & 15u) + 4u;
        if ((token & 15u) == 15u) {
            match = more_length(src, src_len, &ip, match, dst_cap - op);
            if (match == LZ4_ERROR) {
                return LZ4_ERROR;
            }
        }
        if (match > dst_cap - op) {
            return LZ4_ERROR;
        }
        const uint8_t *from = dst + op - offset;
        for (uint32_t i = 0; i < match; i++) { /* byte by byte: the copy may overlap itself */
            dst[op + i] = from[i];
        }
        op += match;
    }
}
