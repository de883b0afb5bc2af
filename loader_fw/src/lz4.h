/* lz4.h - decoder for one LZ4 block (the LZ4 block format, without frame header). */
#ifndef QL_LZ4_H
#define QL_LZ4_H

#include <stdint.h>

#define LZ4_ERROR 0xFFFFFFFFu

/* Decode `src_len` bytes of one LZ4 block into dst (room for `dst_cap` bytes). Returns the
 * number of bytes decoded, or LZ4_ERROR when the block is malformed: a length or offset that
 * reads or writes outside the buffers, an offset of 0 or before the start of the output, a
 * block that ends inside a sequence. Never reads or writes outside [src, src + src_len) and
 * [dst, dst + dst_cap). */
uint32_t lz4_decode(const uint8_t *src, uint32_t src_len, uint8_t *dst, uint32_t dst_cap);

#endif /* QL_LZ4_H */
