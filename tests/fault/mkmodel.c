/*
 * mkmodel.c - write a tiny deterministic model folder for the fault-injection driver
 * (tests/fault/run.sh): a few thousand calls per run instead of the millions a real model
 * would take. Standalone (no libtseal), so the driver can build it with any C compiler.
 *
 *   mkmodel DIR    creates DIR/config.json, DIR/model.safetensors (~15 KB: BF16 weights shaped
 *                  like trained ones, an F32 norm, an I64 index, an empty BF16 tensor) and
 *                  DIR/tokenizer/vocab.txt (a blob in a nested folder).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static double uniform(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* Approximately N(0, sd): the sum of 12 uniforms (no libm needed). */
static float normal(double sd) {
    double s = 0;
    for (int i = 0; i < 12; i++) s += uniform();
    return (float)((s - 6.0) * sd);
}

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

typedef struct {
    const char *name, *dtype;
    unsigned rows, cols; /* cols == 0: 1-D of `rows` elements */
    unsigned esize;
} tensor;

static const tensor tensors[] = {
    {"embed.weight", "BF16", 48, 64, 2},       {"layers.0.mlp.weight", "BF16", 24, 96, 2},
    {"layers.0.norm.weight", "F32", 64, 0, 4}, {"layers.0.positions", "I64", 16, 0, 8},
    {"layers.0.empty", "BF16", 0, 0, 2},       {"lm_head.bias", "BF16", 40, 0, 2},
};
#define NT (sizeof tensors / sizeof tensors[0])

static int write_file(const char *path, const void *a, size_t na, const void *b, size_t nb) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(a, 1, na, f) != na || (nb && fwrite(b, 1, nb, f) != nb) || fclose(f)) {
        fprintf(stderr, "mkmodel: %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: mkmodel DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    char path[4096];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return perror(dir), 1;
    snprintf(path, sizeof path, "%s/tokenizer", dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return perror(path), 1;

    /* data and header */
    static uint8_t data[1 << 16];
    static char hdr[4096];
    size_t off = 0;
    int h = snprintf(hdr, sizeof hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t t = 0; t < NT; t++) {
        const tensor *x = &tensors[t];
        size_t n = (size_t)x->rows * (x->cols ? x->cols : 1), begin = off;
        for (size_t i = 0; i < n; i++, off += x->esize) {
            if (!strcmp(x->dtype, "BF16")) {
                uint16_t v = to_bf16(normal(t == 0 ? 0.02 : 0.05));
                memcpy(data + off, &v, 2);
            } else if (!strcmp(x->dtype, "F32")) {
                float v = 1.0f + normal(0.1);
                memcpy(data + off, &v, 4);
            } else {
                int64_t v = (int64_t)i * 3 - 7;
                memcpy(data + off, &v, 8);
            }
        }
        if (x->cols)
            h += snprintf(hdr + h, sizeof hdr - (size_t)h,
                          ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%u,%u],\"data_offsets\":[%zu,%zu]}",
                          x->name, x->dtype, x->rows, x->cols, begin, off);
        else
            h += snprintf(hdr + h, sizeof hdr - (size_t)h,
                          ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%u],\"data_offsets\":[%zu,%zu]}",
                          x->name, x->dtype, x->rows, begin, off);
    }
    h += snprintf(hdr + h, sizeof hdr - (size_t)h, "}");
    while (h % 8) hdr[h++] = ' ';
    static uint8_t file[4096 + 8];
    for (int i = 0; i < 8; i++) file[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(file + 8, hdr, (size_t)h);

    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (write_file(path, file, 8 + (size_t)h, data, off)) return 1;
    static const char config[] = "{\n  \"architectures\": [\"TinyForCausalLM\"],\n"
                                 "  \"hidden_size\": 64,\n  \"torch_dtype\": \"bfloat16\"\n}\n";
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (write_file(path, config, sizeof config - 1, NULL, 0)) return 1;
    char vocab[2048];
    size_t nv = 0;
    for (int i = 0; i < 200 && nv < sizeof vocab - 16; i++)
        nv += (size_t)snprintf(vocab + nv, sizeof vocab - nv, "tok%d\n", i);
    snprintf(path, sizeof path, "%s/tokenizer/vocab.txt", dir);
    return write_file(path, vocab, nv, NULL, 0);
}
