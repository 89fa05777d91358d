/*
 * test_safetensors.c - the strict safetensors reader (one test per rejection, each checking
 * the code and the message) and the streaming writer.
 */
#include "st_testutil.h"

#include "../packager/model_internal.h"

TestSuite(st, .init = tu_setup, .fini = tu_teardown);
TestSuite(stw, .init = tu_setup, .fini = tu_teardown);

/* A tensor entry: E("a", "F32", "[2]", 0, 8). */
#define E(name, dt, shape, b, e)                                                                   \
    "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

/*
 * Opens the image both from memory and from a file and expects the same rejection from both;
 * the message must name the file and hold `substr`.
 */
static void reject_image(const uint8_t *img, size_t len, int code, const char *substr) {
    tseal_st *st = (tseal_st *)1;
    tu_assert_err(tseal_st_open_mem(img, len, "bad.safetensors", &st), code, substr);
    cr_assert_null(st);
    cr_assert_not_null(strstr(tseal_errmsg(), "bad.safetensors: "), "%s", tseal_errmsg());

    const char *path = tu_path("bad.safetensors");
    tu_write(path, img, len);
    st = (tseal_st *)1;
    tu_assert_err(tseal_st_open(path, &st), code, substr);
    cr_assert_null(st);
    cr_assert_not_null(strstr(tseal_errmsg(), path), "%s", tseal_errmsg());
}

static void reject_hdr_n(const char *header, size_t hlen, size_t data_len, int code,
                         const char *substr) {
    size_t len;
    uint8_t *img = tu_image(header, hlen, NULL, data_len, &len);
    reject_image(img, len, code, substr);
    free(img);
}

static void reject(const char *header, size_t data_len, int code, const char *substr) {
    reject_hdr_n(header, strlen(header), data_len, code, substr);
}

static tseal_st *open_ok(const char *header, const void *data, size_t data_len, uint8_t **img) {
    size_t len;
    *img = tu_image(header, strlen(header), data, data_len, &len);
    tseal_st *st = NULL;
    int rc = tseal_st_open_mem(*img, len, "ok.safetensors", &st);
    cr_assert_eq(rc, 0, "%s", tseal_errmsg());
    return st;
}

/* A header of `n` entries "t<i>":<value>, for the count limits. */
static char *many_entries(size_t n, const char *value) {
    size_t cap = n * (24 + strlen(value)) + 16, k = 0;
    char *h = malloc(cap);
    cr_assert_not_null(h);
    h[k++] = '{';
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(h + k, cap - k, "%s\"t%zu\":%s", i ? "," : "", i, value);
    h[k++] = '}';
    h[k] = 0;
    return h;
}

/* ---- the file frame -------------------------------------------------------------------- */

Test(st, file_shorter_than_8_bytes) {
    reject_image((const uint8_t *)"\x02\0\0", 3, TSEAL_E_CORRUPT,
                 "file is 3 bytes, shorter than the 8-byte header length");
}

Test(st, empty_file) {
    reject_image((const uint8_t *)"", 0, TSEAL_E_CORRUPT, "file is 0 bytes");
}

Test(st, header_length_over_limit) {
    uint8_t img[16] = {0};
    uint64_t n = TSEAL_ST_MAX_HEADER + 1;
    for (int i = 0; i < 8; i++) img[i] = (uint8_t)(n >> (8 * i));
    reject_image(img, sizeof img, TSEAL_E_LIMIT,
                 "header length 100000001 exceeds the limit of 100000000 bytes");
}

Test(st, header_length_max_u64_no_overflow) {
    uint8_t img[16];
    memset(img, 0xFF, sizeof img);
    reject_image(img, sizeof img, TSEAL_E_LIMIT, "header length 18446744073709551615 exceeds");
}

Test(st, header_length_past_end_of_file) {
    size_t len;
    uint8_t *img = tu_image("{}", 2, NULL, 0, &len);
    img[0] = 100;
    reject_image(img, len, TSEAL_E_CORRUPT,
                 "header length 100 exceeds the 2 bytes after the length prefix");
    free(img);
}

Test(st, header_length_zero) {
    reject_hdr_n("", 0, 0, TSEAL_E_CORRUPT, "header length is 0");
}

/* ---- header bytes ---------------------------------------------------------------------- */

Test(st, header_nul_byte) {
    reject_hdr_n("{\"a\0\":{}}", 9, 0, TSEAL_E_CORRUPT, "NUL byte at header offset 3");
}

Test(st, header_invalid_utf8) {
    reject("{\"ab\xff\":{}}", 0, TSEAL_E_CORRUPT, "not valid UTF-8 (at header offset 4)");
}

Test(st, header_utf8_surrogate) {
    reject("{\"\xed\xa0\x80\":{}}", 0, TSEAL_E_CORRUPT, "not valid UTF-8 (at header offset 2)");
}

Test(st, header_utf8_overlong) {
    reject("{\"a\xc0\xaf\":{}}", 0, TSEAL_E_CORRUPT, "not valid UTF-8 (at header offset 3)");
}

Test(st, header_invalid_json) {
    reject("{\"a\":}", 0, TSEAL_E_CORRUPT, "header is not valid JSON (error at header offset 5)");
}

Test(st, header_truncated_json) {
    reject("{\"a\":{\"dtype\":\"F32\"", 0, TSEAL_E_CORRUPT, "header is not valid JSON");
}

Test(st, header_unterminated_string) {
    reject("{\"abc", 0, TSEAL_E_CORRUPT, "unterminated string at header offset 1");
}

Test(st, header_top_level_not_object) {
    reject("[1, 2]", 0, TSEAL_E_CORRUPT, "header top level is not a JSON object");
}

Test(st, header_leading_space) {
    reject(" {}", 0, TSEAL_E_CORRUPT, "header must start with '{', found byte 0x20");
}

Test(st, header_leading_bom) {
    reject("\xef\xbb\xbf{}", 0, TSEAL_E_CORRUPT, "header must start with '{', found byte 0xef");
}

Test(st, header_trailing_garbage) {
    reject("{}  x", 0, TSEAL_E_CORRUPT, "byte 0x78 at header offset 4 after the JSON value");
}

Test(st, header_trailing_newline) {
    reject("{}\n", 0, TSEAL_E_CORRUPT, "byte 0x0a at header offset 2 after the JSON value");
}

Test(st, header_trailing_second_object) {
    reject("{}{}", 0, TSEAL_E_CORRUPT, "byte 0x7b at header offset 2");
}

Test(st, header_control_character) {
    reject("{\x01}", 0, TSEAL_E_CORRUPT, "control character 0x01 at header offset 1");
}

Test(st, header_raw_control_in_string) {
    reject("{\"a\tb\":{}}", 0, TSEAL_E_CORRUPT,
           "raw control character 0x09 in a string at header offset 3");
}

Test(st, header_nul_escape_in_name) {
    /* cJSON would decode "a\u0000b" to "a": refused before it can truncate a name */
    reject("{" E("a\\u0000b", "U8", "[1]", 0, 1) "}", 1, TSEAL_E_CORRUPT,
           "\\u0000 escape (NUL) in a string at header offset 3");
}

Test(st, header_number_leading_zero) {
    reject("{" E("a", "U8", "[01]", 0, 1) "}", 1, TSEAL_E_CORRUPT,
           "malformed number at header offset 28");
}

Test(st, header_number_bare_fraction) {
    reject("{" E("a", "U8", "[1.]", 0, 1) "}", 1, TSEAL_E_CORRUPT, "malformed number");
}

Test(st, header_nested_too_deep) {
    reject("{" E("a", "U8", "[[1]]", 0, 1) "}", 1, TSEAL_E_CORRUPT,
           "JSON nested deeper than 3 levels at header offset 28");
}

Test(st, header_too_many_top_level_entries) {
    char *h = many_entries(TSEAL_ST_MAX_TENSORS + 2, "0");
    size_t len;
    uint8_t *img = tu_image(h, strlen(h), NULL, 0, &len);
    tseal_st *st;
    tu_assert_err(tseal_st_open_mem(img, len, "big.safetensors", &st), TSEAL_E_LIMIT,
                  "big.safetensors: more than 1000001 top-level entries");
    free(img);
    free(h);
}

Test(st, header_too_many_tensors) {
    char *h = many_entries(TSEAL_ST_MAX_TENSORS + 1, "0");
    size_t len;
    uint8_t *img = tu_image(h, strlen(h), NULL, 0, &len);
    tseal_st *st;
    tu_assert_err(tseal_st_open_mem(img, len, "big.safetensors", &st), TSEAL_E_LIMIT,
                  "big.safetensors: 1000001 tensors, over the limit of 1000000");
    free(img);
    free(h);
}

Test(st, header_too_many_json_values) {
    /* one shape of 24M + 1 zeros: rejected by the lexer before cJSON allocates anything */
    size_t zeros = 24000001, cap = 2 * zeros + 64, k = 0;
    char *h = malloc(cap);
    cr_assert_not_null(h);
    k += (size_t)snprintf(h, cap, "{\"a\":{\"shape\":[");
    for (size_t i = 0; i < zeros; i++) {
        h[k++] = '0';
        h[k++] = ',';
    }
    h[k - 1] = ']';
    memcpy(h + k, "}}", 3);
    size_t len;
    uint8_t *img = tu_image(h, strlen(h), NULL, 0, &len);
    tseal_st *st;
    tu_assert_err(tseal_st_open_mem(img, len, "big.safetensors", &st), TSEAL_E_LIMIT,
                  "more than 24000000 JSON values and keys");
    free(img);
    free(h);
}

/* ---- structure ------------------------------------------------------------------------- */

Test(st, duplicate_tensor_name) {
    reject("{" E("b", "U8", "[1]", 0, 1) "," //
           E("a", "U8", "[1]", 1, 2) ","     //
           E("b", "U8", "[1]", 2, 3) "}",
           3, TSEAL_E_CORRUPT, "duplicate tensor name 'b'");
}

Test(st, duplicate_metadata_key_top_level) {
    reject("{\"__metadata__\":{},\"__metadata__\":{}}", 0, TSEAL_E_CORRUPT,
           "duplicate key '__metadata__'");
}

Test(st, duplicate_key_in_entry) {
    reject("{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
           TSEAL_E_CORRUPT, "tensor 'a': duplicate key 'dtype'");
}

Test(st, duplicate_key_in_metadata) {
    reject("{\"__metadata__\":{\"k\":\"1\",\"j\":\"2\",\"k\":\"3\"}}", 0, TSEAL_E_CORRUPT,
           "duplicate metadata key 'k'");
}

Test(st, entry_not_object) {
    reject("{\"a\":[0,1]}", 0, TSEAL_E_CORRUPT, "tensor 'a': entry is not a JSON object");
}

Test(st, entry_missing_shape) {
    reject("{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1, TSEAL_E_CORRUPT,
           "tensor 'a': missing key 'shape'");
}

Test(st, entry_missing_data_offsets) {
    reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, TSEAL_E_CORRUPT,
           "tensor 'a': missing key 'data_offsets'");
}

Test(st, entry_missing_dtype) {
    reject("{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1, TSEAL_E_CORRUPT,
           "tensor 'a': missing key 'dtype'");
}

Test(st, entry_unknown_key) {
    reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"extra\":0}}", 1,
           TSEAL_E_CORRUPT, "tensor 'a': unknown key 'extra'");
}

Test(st, metadata_not_object) {
    reject("{\"__metadata__\":\"x\"}", 0, TSEAL_E_CORRUPT, "__metadata__ is not a JSON object");
}

Test(st, metadata_value_not_string) {
    reject("{\"__metadata__\":{\"format\":\"pt\",\"n\":3}}", 0, TSEAL_E_CORRUPT,
           "metadata 'n': value is not a string");
}

Test(st, metadata_value_too_long) {
    size_t n = TSEAL_ST_MAX_NAME + 1;
    char *h = malloc(n + 64);
    int k = sprintf(h, "{\"__metadata__\":{\"k\":\"");
    memset(h + k, 'v', n);
    strcpy(h + k + n, "\"}}");
    reject(h, 0, TSEAL_E_LIMIT, "metadata 'k': metadata value 'vvv");
    cr_assert_not_null(strstr(tseal_errmsg(), "is 4097 bytes, over the limit of 4096"));
    free(h);
}

/* ---- dtype and shape ------------------------------------------------------------------- */

Test(st, dtype_unknown) {
    reject("{" E("w", "F128", "[1]", 0, 16) "}", 16, TSEAL_E_UNSUPPORTED,
           "tensor 'w': unknown dtype \"F128\"");
}

Test(st, dtype_not_string) {
    reject("{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,1]}}", 1, TSEAL_E_CORRUPT,
           "tensor 'w': dtype is not a string");
}

Test(st, shape_not_array) {
    reject("{" E("w", "U8", "4", 0, 4) "}", 4, TSEAL_E_CORRUPT,
           "tensor 'w': shape is not an array");
}

Test(st, shape_element_not_number) {
    reject("{" E("w", "U8", "[\"4\"]", 0, 4) "}", 4, TSEAL_E_CORRUPT,
           "tensor 'w': shape[0] is not a number");
}

Test(st, shape_negative) {
    reject("{" E("w", "U8", "[2,-2]", 0, 4) "}", 4, TSEAL_E_CORRUPT,
           "tensor 'w': shape[1] is negative (-2)");
}

Test(st, shape_not_integral) {
    reject("{" E("w", "U8", "[1.5]", 0, 1) "}", 1, TSEAL_E_CORRUPT,
           "tensor 'w': shape[0] is not an integer (1.5)");
}

Test(st, shape_not_finite) {
    reject("{" E("w", "U8", "[1e400]", 0, 1) "}", 1, TSEAL_E_CORRUPT,
           "tensor 'w': shape[0] is not finite");
}

Test(st, shape_dimension_over_limit) {
    reject("{" E("w", "U8", "[0,9007199254740994]", 0, 0) "}", 0, TSEAL_E_LIMIT,
           "tensor 'w': shape[1] = 9007199254740994 exceeds the limit 9007199254740992");
}

Test(st, shape_rank_over_limit) {
    reject("{" E("w", "U8", "[1,1,1,1,1,1,1,1,1]", 0, 1) "}", 1, TSEAL_E_LIMIT,
           "tensor 'w': shape has 9 dimensions, over the limit of 8");
}

Test(st, shape_product_overflow) {
    reject("{" E("w", "U8", "[4294967296,4294967296,2]", 0, 1) "}", 1, TSEAL_E_CORRUPT,
           "tensor 'w': shape product overflows 64 bits at dimension 1");
}

Test(st, shape_byte_size_overflow) {
    /* 2^53 * 2^9 = 2^62 elements fit; times 4 bytes does not */
    reject("{" E("w", "F32", "[9007199254740992,512]", 0, 4) "}", 4, TSEAL_E_CORRUPT,
           "tensor 'w': byte size of 4611686018427387904 F32 elements overflows 64 bits");
}

/* ---- data offsets ------------------------------------------------------------------------ */

Test(st, offsets_not_array) {
    reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":1}}", 1, TSEAL_E_CORRUPT,
           "tensor 'w': data_offsets is not an array");
}

Test(st, offsets_three_elements) {
    reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,1]}}", 1, TSEAL_E_CORRUPT,
           "tensor 'w': data_offsets has 3 elements, expected exactly 2");
}

Test(st, offsets_one_element) {
    reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1]}}", 1, TSEAL_E_CORRUPT,
           "tensor 'w': data_offsets has 1 elements, expected exactly 2");
}

Test(st, offsets_not_integer) {
    reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,0.5]}}", 1, TSEAL_E_CORRUPT,
           "tensor 'w': data_offsets[1] is not an integer (0.5)");
}

Test(st, offsets_negative) {
    reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 1, TSEAL_E_CORRUPT,
           "tensor 'w': data_offsets[0] is negative (-1)");
}

Test(st, offsets_begin_after_end) {
    reject("{" E("lm_head.weight", "U8", "[2]", 10, 8) "}", 10, TSEAL_E_CORRUPT,
           "bad.safetensors: tensor 'lm_head.weight': data_offsets [10, 8]: begin > end");
}

Test(st, offsets_end_past_buffer) {
    reject("{" E("w", "F32", "[2]", 0, 8) "}", 4, TSEAL_E_CORRUPT,
           "tensor 'w': data_offsets [0, 8]: end is past the 4-byte data buffer");
}

Test(st, offsets_size_mismatch) {
    reject("{" E("w", "F32", "[2]", 0, 4) "}", 4, TSEAL_E_CORRUPT,
           "tensor 'w': data_offsets [0, 4] span 4 bytes, but 2 x F32 needs 8");
}

Test(st, layout_hole_between_tensors) {
    reject("{" E("a", "F32", "[1]", 0, 4) "," E("b", "F32", "[1]", 8, 12) "}", 12, TSEAL_E_CORRUPT,
           "hole: data bytes [4, 8) between tensors 'a' and 'b' are not covered");
}

Test(st, layout_overlap) {
    reject("{" E("a", "F32", "[1]", 0, 4) "," E("b", "F32", "[1]", 2, 6) "}", 6, TSEAL_E_CORRUPT,
           "overlap: tensor 'b' [2, 6) overlaps tensor 'a' [0, 4)");
}

Test(st, layout_same_span_twice) {
    reject("{" E("a", "F32", "[1]", 0, 4) "," E("b", "F32", "[1]", 0, 4) "}", 4, TSEAL_E_CORRUPT,
           "overlap: tensor 'b' [0, 4) overlaps tensor 'a' [0, 4)");
}

Test(st, layout_first_not_at_zero) {
    reject("{" E("a", "F32", "[1]", 4, 8) "}", 8, TSEAL_E_CORRUPT,
           "first tensor 'a' begins at data offset 4, not 0");
}

Test(st, layout_trailing_bytes) {
    reject("{" E("a", "F32", "[1]", 0, 4) "}", 8, TSEAL_E_CORRUPT,
           "4 trailing data bytes after the last tensor 'a' (ends at 4, buffer is 8 bytes)");
}

Test(st, layout_no_tensors_but_data) {
    reject("{\"__metadata__\":{}}", 8, TSEAL_E_CORRUPT,
           "no tensors, but the data buffer holds 8 bytes");
}

/* ---- names ---------------------------------------------------------------------------- */

Test(st, name_empty) {
    reject("{" E("", "U8", "[1]", 0, 1) "}", 1, TSEAL_E_CORRUPT, "tensor name is empty");
}

Test(st, name_too_long) {
    size_t n = TSEAL_ST_MAX_NAME + 1;
    char *h = malloc(n + 128);
    h[0] = '{';
    h[1] = '"';
    memset(h + 2, 'x', n);
    strcpy(h + 2 + n, "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}");
    reject(h, 1, TSEAL_E_LIMIT, "is 4097 bytes, over the limit of 4096");
    cr_assert_not_null(strstr(tseal_errmsg(), "tensor name 'xxx"));
    cr_assert_lt(strlen(tseal_errmsg()), 400, "long names are cut in messages");
    free(h);
}

Test(st, name_max_length_ok) {
    size_t n = TSEAL_ST_MAX_NAME;
    char *h = malloc(n + 128);
    h[0] = '{';
    h[1] = '"';
    memset(h + 2, 'x', n);
    strcpy(h + 2 + n, "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}");
    uint8_t *img;
    tseal_st *st = open_ok(h, "z", 1, &img);
    cr_assert_eq(strlen(tseal_st_get(st, 0)->name), n);
    tseal_st_close(st);
    free(img);
    free(h);
}

Test(st, name_control_chars_not_echoed) {
    /* an escaped ESC in a name is legal, but messages must not carry it to a terminal */
    reject("{" E("a\\u001b[31m", "U8", "[1]", 0, 2) "}", 2, TSEAL_E_CORRUPT, "tensor 'a?[31m'");
}

/* ---- valid files ----------------------------------------------------------------------- */

Test(st, valid_ranks_0_to_8_and_dtypes) {
    static const char *h = "{"                            //
        E("r0", "F64", "[]", 0, 8) ","                    //
        E("r1", "BF16", "[3]", 8, 14) ","                 //
        E("r2", "I32", "[2,2]", 14, 30) ","               //
        E("r3", "U8", "[1,2,3]", 30, 36) ","              //
        E("r4", "F16", "[1,1,1,2]", 36, 40) ","           //
        E("r5", "I64", "[1,1,1,1,1]", 40, 48) ","         //
        E("r6", "BOOL", "[1,1,1,1,1,2]", 48, 50) ","      //
        E("r7", "F8_E4M3", "[1,1,1,1,1,1,3]", 50, 53) "," //
        E("r8", "U16", "[2,1,1,1,1,1,1,1]", 53, 57) "}";
    uint8_t data[57];
    for (int i = 0; i < 57; i++) data[i] = (uint8_t)(i * 7 + 1);
    uint8_t *img;
    tseal_st *st = open_ok(h, data, sizeof data, &img);
    static const struct {
        tseal_dtype dt;
        uint64_t n, b, e;
    } want[] = {
        {TSEAL_DT_F64, 1, 0, 8},    {TSEAL_DT_BF16, 3, 8, 14},     {TSEAL_DT_I32, 4, 14, 30},
        {TSEAL_DT_U8, 6, 30, 36},   {TSEAL_DT_F16, 2, 36, 40},     {TSEAL_DT_I64, 1, 40, 48},
        {TSEAL_DT_BOOL, 2, 48, 50}, {TSEAL_DT_F8_E4M3, 3, 50, 53}, {TSEAL_DT_U16, 2, 53, 57}};
    cr_assert_eq(tseal_st_count(st), 9);
    for (size_t i = 0; i < 9; i++) {
        const tseal_st_tensor *t = tseal_st_get(st, i);
        char name[4];
        snprintf(name, sizeof name, "r%zu", i);
        cr_assert_str_eq(t->name, name);
        cr_assert_eq(t->rank, i);
        cr_assert_eq(t->dtype, want[i].dt);
        cr_assert_eq(t->n_elems, want[i].n);
        cr_assert_eq(t->begin, want[i].b);
        cr_assert_eq(t->end, want[i].e);
        uint8_t buf[16];
        cr_assert_eq(tseal_st_read(st, i, 0, buf, t->end - t->begin), 0);
        cr_assert_eq(memcmp(buf, data + t->begin, t->end - t->begin), 0);
        size_t idx;
        cr_assert_eq(tseal_st_find(st, name, &idx), 0);
        cr_assert_eq(idx, i);
    }
    cr_assert_eq(tseal_st_get(st, 3)->shape[2], 3);
    cr_assert_null(tseal_st_get(st, 9));
    cr_assert_eq(tseal_st_data_offset(st), 8 + strlen(h));
    cr_assert_eq(tseal_st_file_size(st), 8 + strlen(h) + 57);
    cr_assert_str_eq(tseal_st_path(st), "ok.safetensors");
    tseal_st_close(st);
    free(img);
}

Test(st, valid_from_file_partial_reads) {
    const char *path = tu_path("w.safetensors");
    float v[4] = {1, 2, 3, 4};
    tu_write_st(path, "{" E("w", "F32", "[2,2]", 0, 16) "}  ", v, sizeof v);
    tseal_st *st;
    cr_assert_eq(tseal_st_open(path, &st), 0, "%s", tseal_errmsg());
    float got[2];
    cr_assert_eq(tseal_st_read(st, 0, 8, got, 8), 0);
    cr_assert_eq(got[0], 3.0f);
    cr_assert_eq(got[1], 4.0f);
    cr_assert_eq(tseal_st_read(st, 0, 16, got, 0), 0, "an empty read at the end is fine");
    tu_assert_err(tseal_st_read(st, 0, 12, got, 8), TSEAL_E_INVAL,
                  "tensor 'w': read of 8 bytes at offset 12 is outside its 16 bytes");
    tu_assert_err(tseal_st_read(st, 0, UINT64_MAX, got, 1), TSEAL_E_INVAL, "outside its");
    tu_assert_err(tseal_st_read(st, 1, 0, got, 1), TSEAL_E_INVAL, "tensor index 1 out of range");
    tseal_st_close(st);
}

Test(st, valid_zero_sized_tensors) {
    /* empty tensors anywhere, several at one offset; a zero dimension makes the product 0
     * even when the other dimensions would overflow */
    static const char *h = "{"                                   //
        E("z_end", "F32", "[0]", 8, 8) ","                       //
        E("a", "F32", "[2]", 0, 8) ","                           //
        E("z_start", "BF16", "[3,0]", 0, 0) ","                  //
        E("z_huge", "U8", "[4294967296,4294967296,0]", 0, 0) "," //
        E("z_mid", "I64", "[0,5]", 8, 8) "}";
    float v[2] = {5, 6};
    uint8_t *img;
    tseal_st *st = open_ok(h, v, sizeof v, &img);
    cr_assert_eq(tseal_st_count(st), 5);
    /* data order: (begin, end), ties in header order */
    static const char *order[] = {"z_start", "z_huge", "a", "z_end", "z_mid"};
    for (size_t i = 0; i < 5; i++) cr_assert_str_eq(tseal_st_get(st, i)->name, order[i]);
    cr_assert_eq(tseal_st_get(st, 1)->n_elems, 0);
    cr_assert_eq(tseal_st_read(st, 0, 0, NULL, 0), 0);
    tseal_st_close(st);
    free(img);
}

Test(st, valid_metadata_in_file_order) {
    static const char *h = "{\"__metadata__\":{\"format\":\"pt\",\"b\":\"2\",\"a\":\"\","
                           "\"\\u00e9\":\"caf\\u00e9\"}," E("w", "U8", "[1]", 0, 1) "}";
    uint8_t *img;
    tseal_st *st = open_ok(h, "x", 1, &img);
    cr_assert_eq(tseal_st_meta_count(st), 4);
    static const char *want[][2] = {
        {"format", "pt"}, {"b", "2"}, {"a", ""}, {"\xc3\xa9", "caf\xc3\xa9"}};
    for (size_t i = 0; i < 4; i++) {
        const char *k, *v;
        cr_assert_eq(tseal_st_meta_get(st, i, &k, &v), 0);
        cr_assert_str_eq(k, want[i][0]);
        cr_assert_str_eq(v, want[i][1]);
    }
    tu_assert_err(tseal_st_meta_get(st, 4, NULL, NULL), TSEAL_E_INVAL, "metadata index 4");
    tseal_st_close(st);
    free(img);
}

Test(st, valid_no_tensors) {
    uint8_t *img;
    tseal_st *st = open_ok("{}      ", NULL, 0, &img);
    cr_assert_eq(tseal_st_count(st), 0);
    cr_assert_eq(tseal_st_meta_count(st), 0);
    size_t idx;
    tu_assert_err(tseal_st_find(st, "x", &idx), TSEAL_E_NOTFOUND, "no tensor named 'x'");
    tseal_st_close(st);
    free(img);
}

Test(st, valid_header_bytes_and_data_order) {
    /* tensors listed against data order, header padded with spaces */
    static const char *h = "{" E("c", "U8", "[1]", 2, 3) "," E("b", "U8", "[1]", 1, 2) "," E(
        "a", "U8", "[1]", 0, 1) "}    ";
    uint8_t *img;
    tseal_st *st = open_ok(h, "ABC", 3, &img);
    size_t n;
    const uint8_t *hb = tseal_st_header_bytes(st, &n);
    cr_assert_eq(n, strlen(h));
    cr_assert_eq(memcmp(hb, h, n), 0);
    cr_assert_str_eq(tseal_st_get(st, 0)->name, "a");
    cr_assert_str_eq(tseal_st_get(st, 2)->name, "c");
    char c;
    size_t idx;
    cr_assert_eq(tseal_st_find(st, "c", &idx), 0);
    cr_assert_eq(idx, 2);
    cr_assert_eq(tseal_st_read(st, idx, 0, &c, 1), 0);
    cr_assert_eq(c, 'C');
    tseal_st_close(st);
    free(img);
}

Test(st, valid_escaped_names) {
    static const char *h =
        "{" E("q\\\"uote", "U8", "[1]", 0, 1) "," E("back\\\\slash", "U8", "[1]", 1, 2) "," E(
            "\\u00e9t\\u00e9", "U8", "[1]", 2, 3) "," E("\\ud83d\\ude00", "U8", "[1]", 3, 4) "}";
    uint8_t *img;
    tseal_st *st = open_ok(h, "abcd", 4, &img);
    size_t idx;
    cr_assert_eq(tseal_st_find(st, "q\"uote", &idx), 0);
    cr_assert_eq(tseal_st_find(st, "back\\slash", &idx), 0);
    cr_assert_eq(tseal_st_find(st, "\xc3\xa9t\xc3\xa9", &idx), 0);
    cr_assert_eq(tseal_st_find(st, "\xf0\x9f\x98\x80", &idx), 0);
    cr_assert_eq(idx, 3);
    tseal_st_close(st);
    free(img);
}

Test(st, valid_many_tensors) {
    /* 10^5 tensors listed in reverse data order: sorting and lookups stay O(n log n) */
    size_t n = 100000, cap = n * 80 + 16, k = 0;
    char *h = malloc(cap);
    h[k++] = '{';
    for (size_t i = 0; i < n; i++) {
        size_t j = n - 1 - i;
        k += (size_t)snprintf(h + k, cap - k,
                              "%s\"layer.%zu.w\":{\"dtype\":\"U8\",\"shape\":[1],"
                              "\"data_offsets\":[%zu,%zu]}",
                              i ? "," : "", j, j, j + 1);
    }
    h[k++] = '}';
    h[k] = 0;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++) data[i] = (uint8_t)i;
    uint8_t *img;
    tseal_st *st = open_ok(h, data, n, &img);
    cr_assert_eq(tseal_st_count(st), n);
    for (size_t j = 0; j < n; j += 997) {
        char name[32];
        snprintf(name, sizeof name, "layer.%zu.w", j);
        size_t idx;
        cr_assert_eq(tseal_st_find(st, name, &idx), 0);
        cr_assert_eq(idx, j);
        uint8_t b;
        cr_assert_eq(tseal_st_read(st, idx, 0, &b, 1), 0);
        cr_assert_eq(b, (uint8_t)j);
    }
    tseal_st_close(st);
    free(img);
    free(data);
    free(h);
}

Test(st, open_missing_file) {
    tseal_st *st;
    tu_assert_err(tseal_st_open(tu_path("nope.safetensors"), &st), TSEAL_E_NOTFOUND,
                  "nope.safetensors: cannot open");
}

Test(st, open_directory) {
    tseal_st *st;
    tu_assert_err(tseal_st_open(tu_dir, &st), TSEAL_E_INVAL, "not a regular file");
}

Test(st, json_lex_check_direct) {
    const char *ok = "{\"a\": [0, -1.5e+3, 10], \"b\": {\"c\": true, \"d\": null}}";
    cr_assert_eq(tseal_json_lex_check((const uint8_t *)ok, strlen(ok), 3, 100, 10, "offset"), 0);
    tu_assert_err(tseal_json_lex_check((const uint8_t *)ok, strlen(ok), 3, 5, 10, "offset"),
                  TSEAL_E_LIMIT, "more than 5 JSON values and keys");
    tu_assert_err(tseal_json_lex_check((const uint8_t *)ok, strlen(ok), 3, 100, 1, "offset"),
                  TSEAL_E_LIMIT, "more than 1 top-level entries");
    tu_assert_err(tseal_json_lex_check((const uint8_t *)ok, strlen(ok), 1, 100, 10, "offset"),
                  TSEAL_E_CORRUPT, "nested deeper than 1 levels");
    static const char *bad[] = {"[-]", "[1e]", "[-01]", "[1.e5]", "[1..2]", "[1e+]", "[00]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_neq(
            tseal_json_lex_check((const uint8_t *)bad[i], strlen(bad[i]), 3, 100, 10, "offset"), 0,
            "%s", bad[i]);
}

/* ---- writer ------------------------------------------------------------------------------ */

Test(stw, roundtrip_byte_exact) {
    const char *path = tu_path("out.safetensors");
    tseal_st_writer *w;
    cr_assert_eq(tseal_st_writer_open(path, &w), 0, "%s", tseal_errmsg());
    uint64_t s_bf[2] = {2, 3}, s_u8[1] = {5}, s_e[1] = {0}, s_f64[3] = {1, 1, 2};
    cr_assert_eq(tseal_st_writer_meta(w, "format", "pt"), 0);
    cr_assert_eq(tseal_st_writer_meta(w, "note", "tab\there \"q\""), 0);
    cr_assert_eq(tseal_st_writer_add(w, "w.bf16", TSEAL_DT_BF16, 2, s_bf), 0);
    cr_assert_eq(tseal_st_writer_add(w, "scalar", TSEAL_DT_F32, 0, NULL), 0);
    cr_assert_eq(tseal_st_writer_add(w, "bytes", TSEAL_DT_U8, 1, s_u8), 0);
    cr_assert_eq(tseal_st_writer_add(w, "empty", TSEAL_DT_I64, 1, s_e), 0);
    cr_assert_eq(tseal_st_writer_add(w, "f64", TSEAL_DT_F64, 3, s_f64), 0);
    uint8_t data[12 + 4 + 5 + 16];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 31 + 3);
    /* odd chunking across tensor boundaries */
    cr_assert_eq(tseal_st_writer_write(w, data, 1), 0);
    cr_assert_eq(tseal_st_writer_write(w, data + 1, 0), 0);
    cr_assert_eq(tseal_st_writer_write(w, data + 1, 14), 0);
    cr_assert_eq(tseal_st_writer_write(w, data + 15, sizeof data - 15), 0);
    cr_assert_eq(tseal_st_writer_commit(w), 0, "%s", tseal_errmsg());

    const char *json = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"tab\\there \\\"q\\\"\"},"
                       "\"w.bf16\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                       "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[12,16]},"
                       "\"bytes\":{\"dtype\":\"U8\",\"shape\":[5],\"data_offsets\":[16,21]},"
                       "\"empty\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[21,21]},"
                       "\"f64\":{\"dtype\":\"F64\",\"shape\":[1,1,2],\"data_offsets\":[21,37]}}";
    size_t len;
    uint8_t *file = tu_read(path, &len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | file[i];
    cr_assert_eq((8 + n) % 8, 0, "data starts 8-byte aligned");
    cr_assert_eq(n, (strlen(json) + 7) / 8 * 8);
    cr_assert_eq(memcmp(file + 8, json, strlen(json)), 0, "header: %.*s", (int)n, file + 8);
    for (size_t i = strlen(json); i < n; i++) cr_assert_eq(file[8 + i], ' ');
    cr_assert_eq(len, 8 + n + sizeof data);
    cr_assert_eq(memcmp(file + 8 + n, data, sizeof data), 0);

    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0644);
    cr_assert_eq(tu_count_entries(), 1, "no temporary file left");

    tseal_st *st;
    cr_assert_eq(tseal_st_open(path, &st), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_st_count(st), 5);
    cr_assert_eq(tseal_st_meta_count(st), 2);
    const char *k, *v;
    tseal_st_meta_get(st, 1, &k, &v);
    cr_assert_str_eq(v, "tab\there \"q\"");
    const tseal_st_tensor *t = tseal_st_get(st, 4);
    cr_assert_str_eq(t->name, "f64");
    cr_assert_eq(t->begin, 21);
    cr_assert_eq(t->end, 37);
    uint8_t back[16];
    cr_assert_eq(tseal_st_read(st, 4, 0, back, 16), 0);
    cr_assert_eq(memcmp(back, data + 21, 16), 0);
    tseal_st_close(st);
    free(file);
}

/* Rewrites a file through the reader and the writer; the bytes must not change. */
static void rewrite(const char *in, const char *out) {
    tseal_st *st;
    tseal_st_writer *w;
    cr_assert_eq(tseal_st_open(in, &st), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_st_writer_open(out, &w), 0);
    for (size_t i = 0; i < tseal_st_meta_count(st); i++) {
        const char *k, *v;
        tseal_st_meta_get(st, i, &k, &v);
        cr_assert_eq(tseal_st_writer_meta(w, k, v), 0);
    }
    for (size_t i = 0; i < tseal_st_count(st); i++) {
        const tseal_st_tensor *t = tseal_st_get(st, i);
        cr_assert_eq(tseal_st_writer_add(w, t->name, t->dtype, t->rank, t->shape), 0);
    }
    for (size_t i = 0; i < tseal_st_count(st); i++) {
        const tseal_st_tensor *t = tseal_st_get(st, i);
        uint8_t buf[256];
        cr_assert_leq(t->end - t->begin, sizeof buf);
        cr_assert_eq(tseal_st_read(st, i, 0, buf, t->end - t->begin), 0);
        cr_assert_eq(tseal_st_writer_write(w, buf, t->end - t->begin), 0);
    }
    cr_assert_eq(tseal_st_writer_commit(w), 0, "%s", tseal_errmsg());
    tseal_st_close(st);
}

Test(stw, rewrite_is_byte_identical) {
    const char *a = tu_path("a.safetensors"), *b = tu_path("b.safetensors");
    tseal_st_writer *w;
    cr_assert_eq(tseal_st_writer_open(a, &w), 0);
    uint64_t sh[2] = {3, 4};
    cr_assert_eq(tseal_st_writer_meta(w, "format", "pt"), 0);
    cr_assert_eq(tseal_st_writer_add(w, "x\n\x01\xc3\xa9", TSEAL_DT_F16, 2, sh), 0);
    cr_assert_eq(tseal_st_writer_add(w, "y", TSEAL_DT_I32, 1, sh), 0);
    uint8_t d[24 + 12];
    for (size_t i = 0; i < sizeof d; i++) d[i] = (uint8_t)(i ^ 0x5A);
    cr_assert_eq(tseal_st_writer_write(w, d, sizeof d), 0);
    cr_assert_eq(tseal_st_writer_commit(w), 0);
    rewrite(a, b);
    size_t la, lb;
    uint8_t *fa = tu_read(a, &la), *fb = tu_read(b, &lb);
    cr_assert_eq(la, lb);
    cr_assert_eq(memcmp(fa, fb, la), 0);
    cr_assert_not_null(strstr((char *)fa + 8, "\"x\\n\\u0001\xc3\xa9\""), "%s", fa + 8);
    free(fa);
    free(fb);
}

Test(stw, empty_file) {
    const char *path = tu_path("e.safetensors");
    tseal_st_writer *w;
    cr_assert_eq(tseal_st_writer_open(path, &w), 0);
    cr_assert_eq(tseal_st_writer_commit(w), 0, "%s", tseal_errmsg());
    size_t len;
    uint8_t *f = tu_read(path, &len);
    cr_assert_eq(len, 16);
    cr_assert_eq(memcmp(f, "\x08\0\0\0\0\0\0\0{}      ", 16), 0);
    tseal_st *st;
    cr_assert_eq(tseal_st_open(path, &st), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_st_count(st), 0);
    tseal_st_close(st);
    free(f);
}

Test(stw, abort_leaves_no_file) {
    const char *path = tu_path("x.safetensors");
    tseal_st_writer *w;
    uint64_t sh[1] = {4};
    cr_assert_eq(tseal_st_writer_open(path, &w), 0);
    cr_assert_eq(tseal_st_writer_add(w, "a", TSEAL_DT_U8, 1, sh), 0);
    cr_assert_eq(tseal_st_writer_write(w, "ab", 2), 0);
    tseal_st_writer_abort(w);
    cr_assert(!tu_exists(path));
    cr_assert_eq(tu_count_entries(), 0, "temporary file removed");
}

Test(stw, under_written_commit_fails) {
    const char *path = tu_path("x.safetensors");
    tseal_st_writer *w;
    uint64_t sh[1] = {3};
    cr_assert_eq(tseal_st_writer_open(path, &w), 0);
    cr_assert_eq(tseal_st_writer_add(w, "a", TSEAL_DT_F32, 1, sh), 0);
    cr_assert_eq(tseal_st_writer_write(w, "12345678", 8), 0);
    tu_assert_err(tseal_st_writer_commit(w), TSEAL_E_INVAL,
                  "not committed: 8 of 12 declared data bytes written");
    cr_assert(!tu_exists(path));
    cr_assert_eq(tu_count_entries(), 0);
}

Test(stw, nothing_written_commit_fails) {
    const char *path = tu_path("x.safetensors");
    tseal_st_writer *w;
    uint64_t sh[1] = {3};
    cr_assert_eq(tseal_st_writer_open(path, &w), 0);
    cr_assert_eq(tseal_st_writer_add(w, "a", TSEAL_DT_F32, 1, sh), 0);
    tu_assert_err(tseal_st_writer_commit(w), TSEAL_E_INVAL, "0 of 12 declared data bytes");
    cr_assert_eq(tu_count_entries(), 0);
}

Test(stw, over_written_fails) {
    const char *path = tu_path("x.safetensors");
    tseal_st_writer *w;
    uint64_t sh[1] = {3};
    cr_assert_eq(tseal_st_writer_open(path, &w), 0);
    cr_assert_eq(tseal_st_writer_add(w, "a", TSEAL_DT_U8, 1, sh), 0);
    cr_assert_eq(tseal_st_writer_write(w, "12", 2), 0);
    tu_assert_err(tseal_st_writer_write(w, "34", 2), TSEAL_E_INVAL,
                  "writing 2 bytes at data offset 2 exceeds the 3 declared bytes");
    tu_assert_err(tseal_st_writer_write(w, "3", 1), TSEAL_E_INVAL, "writer failed earlier");
    tu_assert_err(tseal_st_writer_commit(w), TSEAL_E_INVAL, "not committed");
    cr_assert(!tu_exists(path));
    cr_assert_eq(tu_count_entries(), 0);
}

Test(stw, declare_after_data_fails) {
    const char *path = tu_path("x.safetensors");
    tseal_st_writer *w;
    uint64_t sh[1] = {1};
    cr_assert_eq(tseal_st_writer_open(path, &w), 0);
    cr_assert_eq(tseal_st_writer_add(w, "a", TSEAL_DT_U8, 1, sh), 0);
    cr_assert_eq(tseal_st_writer_write(w, "1", 1), 0);
    tu_assert_err(tseal_st_writer_add(w, "b", TSEAL_DT_U8, 1, sh), TSEAL_E_INVAL,
                  "tensor 'b' declared after data");
    tu_assert_err(tseal_st_writer_meta(w, "k", "v"), TSEAL_E_INVAL, "declared after data");
    cr_assert_neq(tseal_st_writer_commit(w), 0);
    cr_assert_eq(tu_count_entries(), 0);
}

Test(stw, duplicate_names_fail) {
    const char *path = tu_path("x.safetensors");
    tseal_st_writer *w;
    uint64_t sh[1] = {1};
    cr_assert_eq(tseal_st_writer_open(path, &w), 0);
    cr_assert_eq(tseal_st_writer_add(w, "a", TSEAL_DT_U8, 1, sh), 0);
    cr_assert_eq(tseal_st_writer_add(w, "b", TSEAL_DT_U8, 1, sh), 0);
    cr_assert_eq(tseal_st_writer_add(w, "a", TSEAL_DT_U8, 1, sh), 0);
    tu_assert_err(tseal_st_writer_write(w, "123", 3), TSEAL_E_INVAL, "duplicate tensor name 'a'");
    cr_assert_neq(tseal_st_writer_commit(w), 0);
    cr_assert_eq(tu_count_entries(), 0);
}

Test(stw, duplicate_metadata_fails) {
    tseal_st_writer *w;
    cr_assert_eq(tseal_st_writer_open(tu_path("x.safetensors"), &w), 0);
    cr_assert_eq(tseal_st_writer_meta(w, "k", "1"), 0);
    cr_assert_eq(tseal_st_writer_meta(w, "k", "2"), 0);
    tu_assert_err(tseal_st_writer_commit(w), TSEAL_E_INVAL, "duplicate metadata key 'k'");
    cr_assert_eq(tu_count_entries(), 0);
}

Test(stw, bad_declarations) {
    tseal_st_writer *w;
    uint64_t sh[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, big[2] = {1ull << 40, 1ull << 40};
    cr_assert_eq(tseal_st_writer_open(tu_path("x.safetensors"), &w), 0);
    tu_assert_err(tseal_st_writer_add(w, "", TSEAL_DT_U8, 1, sh), TSEAL_E_INVAL,
                  "tensor name is empty");
    tu_assert_err(tseal_st_writer_add(w, "__metadata__", TSEAL_DT_U8, 1, sh), TSEAL_E_INVAL,
                  "is reserved");
    tu_assert_err(tseal_st_writer_add(w, "\xff", TSEAL_DT_U8, 1, sh), TSEAL_E_INVAL,
                  "not valid UTF-8");
    tu_assert_err(tseal_st_writer_add(w, "r", TSEAL_DT_U8, 9, sh), TSEAL_E_LIMIT, "rank 9");
    tu_assert_err(tseal_st_writer_add(w, "d", TSEAL_DT_COUNT, 1, sh), TSEAL_E_INVAL,
                  "invalid dtype");
    tu_assert_err(tseal_st_writer_add(w, "o", TSEAL_DT_U8, 2, big), TSEAL_E_INVAL,
                  "shape product overflows");
    tu_assert_err(tseal_st_writer_meta(w, "k", "\xc0\x80"), TSEAL_E_INVAL, "not valid UTF-8");
    cr_assert_neq(tseal_st_writer_commit(w), 0, "a failed declaration poisons the writer");
    cr_assert_eq(tu_count_entries(), 0);
}

Test(stw, open_in_missing_directory) {
    tseal_st_writer *w = (tseal_st_writer *)1;
    tu_assert_err(tseal_st_writer_open(tu_path("no/such/x.safetensors"), &w), TSEAL_E_IO,
                  "cannot create temporary file");
    cr_assert_null(w);
}

/* Numbers must be spelled as exact integers: other parsers read "2.0", "1e1", "-0" or
 * 2^53 + 1 differently (or refuse them), so two readers could see two different models. */
Test(st, numbers_spelled_other_than_integers) {
    reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2.0,3],\"data_offsets\":[0,12]}}", 12,
           TSEAL_E_CORRUPT, "is not a non-negative integer");
    reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3e0],\"data_offsets\":[0,12]}}", 12,
           TSEAL_E_CORRUPT, "is not a non-negative integer");
    reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[-0,12]}}", 12,
           TSEAL_E_CORRUPT, "is not a non-negative integer");
    reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[0,9007199254740993],\"data_offsets\":[0,0]}}", 0,
           TSEAL_E_CORRUPT, "exceeds 2^53");
}

Test(st, messages_never_carry_terminal_controls) {
    char q[TSEAL_QUOTE_MAX];
    tseal_quote("a\x1b[31mb\xc2\x9b"
                "31mc",
                q);
    cr_assert_str_eq(q, "a?[31mb??31mc");
}
