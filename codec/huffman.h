/*
 * huffman.h - canonical, length-limited Huffman codes over the 256 exponent values
 * (internal to the library; the CUDA host code uses the table builders too).
 */
#ifndef TSEAL_HUFFMAN_H
#define TSEAL_HUFFMAN_H

#include <stdint.h>

#include "tseal_layout.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Optimal code lengths under a length limit (package-merge) for the symbols with nonzero
 * counts; absent symbols get length 0. Requires >= 2 present symbols and
 * 2^limit >= their number. Returns 0 or TSEAL_E_INVAL.
 */
int tseal_huff_lengths(const uint64_t hist[256], unsigned limit, uint8_t len[256]);

/*
 * Validate stored code lengths: each <= TSEAL_HUFF_MAX_BITS, >= 2 symbols, Kraft sum exactly 1.
 * Returns 0 or TSEAL_E_CORRUPT (with a message).
 */
int tseal_huff_check(const uint8_t len[256]);

/* Canonical codes (MSB-first values) from valid lengths. */
void tseal_huff_codes(const uint8_t len[256], uint16_t code[256]);

/*
 * Decode tables indexed by the next TSEAL_DTAB_BITS stream bits, from valid lengths:
 * `multi` (TSEAL_DTAB_SIZE u32, see TSEAL_DTAB_MAKE) holds up to 3 whole codes per entry;
 * `single` (TSEAL_DTAB_SIZE u16) holds one symbol and its code length.
 */
void tseal_huff_build_dtab(const uint8_t len[256], uint32_t *multi, uint16_t *single);

#ifdef __cplusplus
}
#endif
#endif
