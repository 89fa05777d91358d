/*
 * huffman.c - optimal length-limited code lengths (package-merge), canonical codes, and the
 * decode tables shared by the CPU fast decoder and the CUDA kernels.
 */
#include <stdlib.h>

#include "huffman.h"
#include "internal.h"

typedef struct {
    uint64_t weight;
    int16_t sym; /* leaf symbol, or -1 for a package */
} pm_item;

static int cmp_leaf(const void *a, const void *b) {
    const pm_item *x = a, *y = b;
    if (x->weight != y->weight) return x->weight < y->weight ? -1 : 1;
    return x->sym - y->sym;
}

/*
 * Package-merge (Larmore & Hirschberg): list[limit] is the sorted leaves; list[j] merges the
 * leaves with the pairwise packages of list[j+1]. Selecting the first 2n-2 items of list[1]
 * and, level by level, the items the selected packages came from (always a prefix), gives
 * each symbol a length equal to the number of selected leaves of it.
 */
int tseal_huff_lengths(const uint64_t hist[256], unsigned limit, uint8_t len[256]) {
    pm_item leaves[256];
    unsigned n = 0;
    memset(len, 0, 256);
    for (unsigned s = 0; s < 256; s++)
        if (hist[s]) leaves[n++] = (pm_item){hist[s], (int16_t)s};
    if (n < 2 || limit < 1 || limit > TSEAL_HUFF_MAX_MEASURE_BITS ||
        (limit < 9 && (1u << limit) < n))
        return tseal_err(TSEAL_E_INVAL, "no prefix code of %u symbols within %u bits", n, limit);
    qsort(leaves, n, sizeof *leaves, cmp_leaf);

    pm_item *lists = malloc(sizeof(pm_item) * 2 * n * (limit + 1));
    unsigned *sizes = calloc(limit + 1, sizeof *sizes);
    if (!lists || !sizes) {
        free(lists);
        free(sizes);
        return tseal_err(TSEAL_E_NOMEM, "out of memory building a Huffman code");
    }
#define LIST(j) (lists + (size_t)(j)*2 * n)
    memcpy(LIST(limit), leaves, n * sizeof *leaves);
    sizes[limit] = n;
    for (unsigned j = limit - 1; j >= 1; j--) {
        const pm_item *prev = LIST(j + 1);
        unsigned npk = sizes[j + 1] / 2, li = 0, pi = 0, k = 0;
        pm_item *cur = LIST(j);
        while (li < n || pi < npk) {
            uint64_t pw = pi < npk ? prev[2 * pi].weight + prev[2 * pi + 1].weight : 0;
            if (pi >= npk || (li < n && leaves[li].weight <= pw)) {
                cur[k++] = leaves[li++];
            } else {
                cur[k++] = (pm_item){pw, -1};
                pi++;
            }
        }
        sizes[j] = k;
    }
    unsigned take = 2 * n - 2;
    for (unsigned j = 1; j <= limit && take > 0; j++) {
        const pm_item *cur = LIST(j);
        unsigned packages = 0;
        for (unsigned i = 0; i < take; i++) {
            if (cur[i].sym >= 0)
                len[cur[i].sym]++;
            else
                packages++;
        }
        take = 2 * packages;
    }
#undef LIST
    free(lists);
    free(sizes);
    return 0;
}

int tseal_huff_check(const uint8_t len[256]) {
    uint32_t kraft = 0, nsym = 0;
    for (unsigned s = 0; s < 256; s++) {
        if (len[s] > TSEAL_HUFF_MAX_BITS)
            return tseal_err(TSEAL_E_CORRUPT, "code length %u of symbol %u exceeds the limit %u",
                             len[s], s, TSEAL_HUFF_MAX_BITS);
        if (len[s]) {
            kraft += 1u << (TSEAL_HUFF_MAX_BITS - len[s]);
            nsym++;
        }
    }
    if (nsym < 2)
        return tseal_err(TSEAL_E_CORRUPT, "Huffman table has %u symbols (need >= 2)", nsym);
    if (kraft != (1u << TSEAL_HUFF_MAX_BITS))
        return tseal_err(TSEAL_E_CORRUPT, "Huffman code lengths are not complete: Kraft sum %u/%u",
                         kraft, 1u << TSEAL_HUFF_MAX_BITS);
    return 0;
}

void tseal_huff_codes(const uint8_t len[256], uint16_t code[256]) {
    unsigned count[TSEAL_HUFF_MAX_BITS + 1] = {0}, next[TSEAL_HUFF_MAX_BITS + 2] = {0};
    for (unsigned s = 0; s < 256; s++) count[len[s]]++;
    count[0] = 0;
    for (unsigned l = 1; l <= TSEAL_HUFF_MAX_BITS; l++) next[l] = (next[l - 1] + count[l - 1]) << 1;
    for (unsigned s = 0; s < 256; s++) code[s] = len[s] ? (uint16_t)next[len[s]]++ : 0;
}

void tseal_huff_build_dtab(const uint8_t len[256], uint32_t *multi, uint16_t *single) {
    uint16_t code[256];
    tseal_huff_codes(len, code);
    for (unsigned s = 0; s < 256; s++) {
        if (!len[s]) continue;
        unsigned shift = TSEAL_DTAB_BITS - len[s];
        unsigned first = (unsigned)code[s] << shift, last = first + (1u << shift);
        for (unsigned i = first; i < last; i++) single[i] = (uint16_t)(s | (unsigned)len[s] << 8);
    }
    /* Greedily pack whole codes: the bits after the first code are still real stream bits. */
    for (unsigned i = 0; i < TSEAL_DTAB_SIZE; i++) {
        unsigned used = 0, count = 0;
        uint32_t syms = 0;
        while (count < TSEAL_DTAB_MAX_SYMS) {
            unsigned idx = (i << used) & (TSEAL_DTAB_SIZE - 1);
            unsigned e = single[idx], l = TSEAL_STAB_LEN(e);
            if (used + l > TSEAL_DTAB_BITS) break;
            syms |= TSEAL_STAB_SYM(e) << (8 * count);
            used += l;
            count++;
        }
        multi[i] = TSEAL_DTAB_MAKE(syms, count, used);
    }
}
