/*
 * test_model.c - models: a single file, a sharded checkpoint (by index path or folder) and a
 * folder of files, with the consistency failures of each; the index JSON parser on its own.
 */
#include "st_testutil.h"

#include "../packager/model_internal.h"

TestSuite(model, .init = tu_setup, .fini = tu_teardown);
TestSuite(stindex, .init = tu_setup, .fini = tu_teardown);

/* Writes a file with U8 [4] tensors named names[0..n), data = first letters of the name. */
static void write_shard(const char *path, const char *const *names, size_t n) {
    tseal_st_writer *w;
    uint64_t shape[1] = {4};
    cr_assert_eq(tseal_st_writer_open(path, &w), 0, "%s", tseal_errmsg());
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(tseal_st_writer_add(w, names[i], TSEAL_DT_U8, 1, shape), 0);
    for (size_t i = 0; i < n; i++) {
        char d[4] = {0};
        memcpy(d, names[i], strnlen(names[i], 4));
        cr_assert_eq(tseal_st_writer_write(w, d, 4), 0);
    }
    cr_assert_eq(tseal_st_writer_commit(w), 0, "%s", tseal_errmsg());
}

static const char *const S1[] = {"emb", "l0.q", "l0.k"};
static const char *const S2[] = {"l1.q", "l1.k"};
static const char *const S3[] = {"norm", "head"};
#define SH1 "model-00001-of-00003.safetensors"
#define SH2 "model-00002-of-00003.safetensors"
#define SH3 "model-00003-of-00003.safetensors"
#define IDX "model.safetensors.index.json"

/* The three shards and an index whose weight_map is `map` (a JSON object body). */
static void write_sharded(const char *map) {
    write_shard(tu_path(SH1), S1, 3);
    write_shard(tu_path(SH2), S2, 2);
    write_shard(tu_path(SH3), S3, 2);
    char json[2048];
    snprintf(json, sizeof json, "{\"metadata\": {\"total_size\": 28}, \"weight_map\": {%s}}\n",
             map);
    tu_write_str(tu_path(IDX), json);
}

#define GOOD_MAP                                                                                   \
    "\"emb\": \"" SH1 "\", \"l0.q\": \"" SH1 "\", \"l0.k\": \"" SH1 "\", \"l1.q\": \"" SH2         \
    "\", \"l1.k\": \"" SH2 "\", \"norm\": \"" SH3 "\", \"head\": \"" SH3 "\""

static void check_sharded(tseal_model *m) {
    cr_assert_eq(tseal_model_file_count(m), 3);
    cr_assert_eq(tseal_model_tensor_count(m), 7);
    cr_assert_not_null(tseal_model_index_path(m));
    cr_assert_not_null(strstr(tseal_model_index_path(m), IDX));
    cr_assert_not_null(strstr(tseal_st_path(tseal_model_file(m, 1)), SH2));
    static const char *order[] = {"emb", "l0.q", "l0.k", "l1.q", "l1.k", "norm", "head"};
    static const size_t file[] = {0, 0, 0, 1, 1, 2, 2};
    for (size_t i = 0; i < 7; i++) {
        size_t f;
        const tseal_st_tensor *t = tseal_model_tensor(m, i, &f);
        cr_assert_str_eq(t->name, order[i]);
        cr_assert_eq(f, file[i]);
        char d[4];
        cr_assert_eq(tseal_model_read(m, i, 0, d, 4), 0);
        cr_assert_eq(strncmp(d, order[i], 4), 0);
    }
    cr_assert_null(tseal_model_tensor(m, 7, NULL));
    cr_assert_null(tseal_model_file(m, 3));
    char d[1];
    tu_assert_err(tseal_model_read(m, 7, 0, d, 1), TSEAL_E_INVAL, "tensor index 7 out of range");
}

/* Opening `path` fails with `code`, the message naming `a` and `b`. */
static void open_fails(const char *path, int code, const char *a, const char *b) {
    tseal_model *m = (tseal_model *)1;
    tu_assert_err(tseal_model_open(path, &m), code, a);
    cr_assert_null(m);
    if (b) cr_assert_not_null(strstr(tseal_errmsg(), b), "%s lacks %s", tseal_errmsg(), b);
}

/* ---- valid models ---------------------------------------------------------------------- */

Test(model, single_file) {
    write_shard(tu_path("model.safetensors"), S1, 3);
    tseal_model *m;
    cr_assert_eq(tseal_model_open(tu_path("model.safetensors"), &m), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_model_file_count(m), 1);
    cr_assert_eq(tseal_model_tensor_count(m), 3);
    cr_assert_null(tseal_model_index_path(m));
    size_t f = 9;
    cr_assert_str_eq(tseal_model_tensor(m, 2, &f)->name, "l0.k");
    cr_assert_eq(f, 0);
    tseal_model_close(m);
}

Test(model, sharded_by_index_path) {
    write_sharded(GOOD_MAP);
    tseal_model *m;
    cr_assert_eq(tseal_model_open(tu_path(IDX), &m), 0, "%s", tseal_errmsg());
    check_sharded(m);
    tseal_model_close(m);
}

Test(model, sharded_folder) {
    write_sharded(GOOD_MAP);
    /* a second index is ignored: model.safetensors.index.json is preferred */
    tu_write_str(tu_path("other.safetensors.index.json"), "garbage");
    tseal_model *m;
    cr_assert_eq(tseal_model_open(tu_dir, &m), 0, "%s", tseal_errmsg());
    check_sharded(m);
    tseal_model_close(m);
}

Test(model, folder_with_one_other_index) {
    write_shard(tu_path("a.safetensors"), S1, 3);
    write_shard(tu_path("stray.safetensors"), S2, 2); /* not in the index: not in the model */
    tu_write_str(tu_path("custom.safetensors.index.json"),
                 "{\"weight_map\": {\"emb\": \"a.safetensors\", \"l0.q\": \"a.safetensors\", "
                 "\"l0.k\": \"a.safetensors\"}}");
    tseal_model *m;
    cr_assert_eq(tseal_model_open(tu_dir, &m), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_model_file_count(m), 1);
    cr_assert_eq(tseal_model_tensor_count(m), 3);
    cr_assert_not_null(strstr(tseal_model_index_path(m), "custom.safetensors.index.json"));
    tseal_model_close(m);
}

Test(model, folder_without_index_in_name_order) {
    write_shard(tu_path("c.safetensors"), S3, 2);
    write_shard(tu_path("a.safetensors"), S1, 3);
    write_shard(tu_path("b.safetensors"), S2, 2);
    tu_write_str(tu_path("config.json"), "{}");
    tu_write_str(tu_path(".hidden.safetensors"), "not even safetensors");
    tseal_model *m;
    cr_assert_eq(tseal_model_open(tu_dir, &m), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_model_file_count(m), 3);
    cr_assert_null(tseal_model_index_path(m));
    cr_assert_not_null(strstr(tseal_st_path(tseal_model_file(m, 0)), "/a.safetensors"));
    cr_assert_not_null(strstr(tseal_st_path(tseal_model_file(m, 2)), "/c.safetensors"));
    cr_assert_str_eq(tseal_model_tensor(m, 0, NULL)->name, "emb");
    cr_assert_str_eq(tseal_model_tensor(m, 6, NULL)->name, "head");
    tseal_model_close(m);
}

/* ---- sharded failures ------------------------------------------------------------------ */

Test(model, sharded_missing_shard) {
    write_sharded(GOOD_MAP);
    unlink(tu_path(SH3));
    open_fails(tu_path(IDX), TSEAL_E_NOTFOUND, IDX ": shard '" SH3 "': ", "cannot open");
}

Test(model, sharded_tensor_missing_from_weight_map) {
    write_sharded("\"emb\": \"" SH1 "\", \"l0.q\": \"" SH1 "\", \"l0.k\": \"" SH1
                  "\", \"l1.q\": \"" SH2 "\", \"norm\": \"" SH3 "\", \"head\": \"" SH3 "\"");
    open_fails(tu_path(IDX), TSEAL_E_CORRUPT, IDX ": tensor 'l1.k' of shard '" SH2 "'",
               "is not listed in weight_map");
}

Test(model, sharded_weight_map_entry_missing_from_shard) {
    write_sharded(GOOD_MAP ", \"ghost\": \"" SH2 "\"");
    open_fails(tu_path(IDX), TSEAL_E_CORRUPT,
               IDX ": weight_map lists tensor 'ghost' in shard '" SH2 "', which has no such tensor",
               NULL);
}

Test(model, sharded_tensor_in_wrong_shard) {
    write_sharded("\"emb\": \"" SH1 "\", \"l0.q\": \"" SH1 "\", \"l0.k\": \"" SH1
                  "\", \"l1.q\": \"" SH2 "\", \"l1.k\": \"" SH3 "\", \"norm\": \"" SH3
                  "\", \"head\": \"" SH3 "\"");
    open_fails(tu_path(IDX), TSEAL_E_CORRUPT,
               "tensor 'l1.k' is in shard '" SH2 "', but weight_map names shard '" SH3 "'", IDX);
}

Test(model, sharded_duplicate_across_shards) {
    write_sharded(GOOD_MAP);
    static const char *const dup[] = {"norm", "l1.q"}; /* l1.q is in shard 2 as well */
    write_shard(tu_path(SH3), dup, 2);
    open_fails(tu_path(IDX), TSEAL_E_CORRUPT, "tensor 'l1.q' is in both", SH3);
    cr_assert_not_null(strstr(tseal_errmsg(), SH2));
    cr_assert_not_null(strstr(tseal_errmsg(), IDX ": "));
}

Test(model, sharded_path_traversal) {
    /* the index is in sub/ and the file exists one level up: it must not be reached */
    char sub[512];
    snprintf(sub, sizeof sub, "%s/sub", tu_dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    write_shard(tu_path("x.safetensors"), S1, 3);
    char idx[600];
    snprintf(idx, sizeof idx, "%s/" IDX, sub);
    tu_write_str(idx, "{\"weight_map\": {\"emb\": \"../x.safetensors\"}}");
    open_fails(idx, TSEAL_E_CORRUPT,
               "weight_map['emb']: shard '../x.safetensors' is not a plain file name", IDX);
}

Test(model, sharded_absolute_path) {
    write_shard(tu_path("x.safetensors"), S1, 3);
    char idx[1024];
    snprintf(idx, sizeof idx, "{\"weight_map\": {\"emb\": \"%s\"}}", tu_path("x.safetensors"));
    tu_write_str(tu_path(IDX), idx);
    open_fails(tu_path(IDX), TSEAL_E_CORRUPT, "is not a plain file name (has a path separator)",
               "weight_map['emb']");
}

Test(model, sharded_backslash_path) {
    tu_write_str(tu_path(IDX), "{\"weight_map\": {\"emb\": \"..\\\\x.safetensors\"}}");
    open_fails(tu_path(IDX), TSEAL_E_CORRUPT, "shard '..\\x.safetensors' is not a plain file name",
               NULL);
}

Test(model, sharded_dotdot_name) {
    tu_write_str(tu_path(IDX), "{\"weight_map\": {\"emb\": \"..\"}}");
    open_fails(tu_path(IDX), TSEAL_E_CORRUPT, "shard '..' is not a plain file name", NULL);
}

Test(model, sharded_empty_shard_name) {
    tu_write_str(tu_path(IDX), "{\"weight_map\": {\"emb\": \"\"}}");
    open_fails(tu_path(IDX), TSEAL_E_CORRUPT, "weight_map['emb']: shard '' is empty", NULL);
}

Test(model, sharded_nul_in_shard_name) {
    tu_write_str(tu_path(IDX), "{\"weight_map\": {\"emb\": \"a\\u0000/../../etc/passwd\"}}");
    open_fails(tu_path(IDX), TSEAL_E_CORRUPT, "\\u0000 escape (NUL)", IDX);
}

Test(model, sharded_bad_shard_file) {
    write_sharded(GOOD_MAP);
    tu_write_str(tu_path(SH2), "short");
    open_fails(tu_dir, TSEAL_E_CORRUPT, IDX ": shard '" SH2 "': ", "shorter than the 8-byte");
}

Test(model, index_too_large) {
    /* a sparse file: the size is refused before anything is read */
    FILE *f = fopen(tu_path(IDX), "wb");
    cr_assert_not_null(f);
    cr_assert_eq(ftruncate(fileno(f), 100000001), 0);
    fclose(f);
    open_fails(tu_path(IDX), TSEAL_E_LIMIT, "100000001 bytes, over the limit of 100000000", IDX);
}

Test(model, index_not_json) {
    tu_write_str(tu_path(IDX), "{\"weight_map\": {\"a\": }");
    open_fails(tu_path(IDX), TSEAL_E_CORRUPT, IDX ": not valid JSON", NULL);
}

/* ---- folder failures ------------------------------------------------------------------- */

Test(model, folder_duplicate_names_across_files) {
    write_shard(tu_path("a.safetensors"), S1, 3);
    static const char *const dup[] = {"x", "l0.k"};
    write_shard(tu_path("b.safetensors"), dup, 2);
    open_fails(tu_dir, TSEAL_E_CORRUPT, "tensor 'l0.k' is in both", "a.safetensors and ");
    cr_assert_not_null(strstr(tseal_errmsg(), "/b.safetensors"));
}

Test(model, folder_empty) {
    tu_write_str(tu_path("config.json"), "{}");
    open_fails(tu_dir, TSEAL_E_NOTFOUND, "no *.safetensors files in directory", tu_dir);
}

Test(model, folder_corrupt_file) {
    write_shard(tu_path("a.safetensors"), S1, 3);
    tu_write_st(tu_path("b.safetensors"), "{\"x\":1}", NULL, 0);
    open_fails(tu_dir, TSEAL_E_CORRUPT, "b.safetensors: tensor 'x': entry is not a JSON object",
               NULL);
}

Test(model, folder_of_a_directory_named_safetensors) {
    cr_assert_eq(mkdir(tu_path("d.safetensors"), 0755), 0);
    open_fails(tu_dir, TSEAL_E_INVAL, "d.safetensors: not a regular file", NULL);
}

Test(model, open_missing_path) {
    open_fails(tu_path("nothing"), TSEAL_E_NOTFOUND, "nothing", NULL);
}

/* ---- the index parser on bytes ------------------------------------------------------------ */

static void index_fails(const char *json, int code, const char *substr) {
    tseal_st_index *ix = (tseal_st_index *)1;
    tu_assert_err(tseal_st_index_parse(json, strlen(json), "i.json", &ix), code, substr);
    cr_assert_null(ix);
    cr_assert_not_null(strstr(tseal_errmsg(), "i.json: "), "%s", tseal_errmsg());
}

Test(stindex, parse_sorted_and_found) {
    const char *j = "\n {\"metadata\": {\"total_size\": 10, \"extra\": [1, {\"x\": null}]},\n"
                    "  \"weight_map\": {\"z\": \"b.st\", \"a\": \"b.st\", \"m\": \"a.st\"}}\n\t ";
    tseal_st_index *ix;
    cr_assert_eq(tseal_st_index_parse(j, strlen(j), "i.json", &ix), 0, "%s", tseal_errmsg());
    cr_assert_eq(ix->n_entries, 3);
    cr_assert_eq(ix->n_shards, 2);
    cr_assert_str_eq(ix->shards[0], "a.st");
    cr_assert_str_eq(ix->shards[1], "b.st");
    cr_assert_str_eq(ix->entries[0].tensor, "a");
    cr_assert_str_eq(ix->entries[2].tensor, "z");
    size_t pos;
    cr_assert_eq(tseal_st_index_find(ix, "m", &pos), 0);
    cr_assert_eq(ix->entries[pos].shard, 0);
    cr_assert_eq(tseal_st_index_find(ix, "q", &pos), TSEAL_E_NOTFOUND);
    tseal_st_index_free(ix);
}

Test(stindex, no_weight_map) {
    index_fails("{\"metadata\": {}}", TSEAL_E_CORRUPT, "no weight_map");
}

Test(stindex, weight_map_not_object) {
    index_fails("{\"weight_map\": []}", TSEAL_E_CORRUPT, "weight_map is not a JSON object");
}

Test(stindex, metadata_not_object) {
    index_fails("{\"metadata\": 1, \"weight_map\": {}}", TSEAL_E_CORRUPT,
                "metadata is not a JSON object");
}

Test(stindex, value_not_string) {
    index_fails("{\"weight_map\": {\"a\": 1}}", TSEAL_E_CORRUPT, "weight_map['a'] is not a string");
}

Test(stindex, duplicate_tensor) {
    index_fails("{\"weight_map\": {\"a\": \"x\", \"b\": \"x\", \"a\": \"x\"}}", TSEAL_E_CORRUPT,
                "weight_map lists tensor 'a' twice");
}

Test(stindex, duplicate_top_level_key) {
    index_fails("{\"weight_map\": {}, \"weight_map\": {\"a\": \"x\"}}", TSEAL_E_CORRUPT,
                "duplicate top-level key 'weight_map'");
}

Test(stindex, empty_tensor_name) {
    index_fails("{\"weight_map\": {\"\": \"x\"}}", TSEAL_E_CORRUPT, "empty tensor name");
}

Test(stindex, top_level_not_object) {
    index_fails("[{\"weight_map\": {}}]", TSEAL_E_CORRUPT, "top level is not an object");
}

Test(stindex, trailing_bytes) {
    index_fails("{\"weight_map\": {}} x", TSEAL_E_CORRUPT, "byte 0x78 at offset 19");
}

Test(stindex, invalid_utf8) {
    index_fails("{\"weight_map\": {\"\xff\": \"x\"}}", TSEAL_E_CORRUPT, "not valid UTF-8");
}

Test(stindex, bom) {
    index_fails("\xef\xbb\xbf{\"weight_map\": {}}", TSEAL_E_CORRUPT,
                "does not start with a JSON object");
}

Test(stindex, too_many_top_level_keys) {
    char j[4096];
    size_t k = (size_t)sprintf(j, "{\"weight_map\": {}");
    for (int i = 0; i < 64; i++) k += (size_t)sprintf(j + k, ", \"k%d\": 0", i);
    strcpy(j + k, "}");
    index_fails(j, TSEAL_E_LIMIT, "more than 64 top-level entries");
}

Test(stindex, too_many_shards) {
    size_t n = TSEAL_MODEL_MAX_FILES + 1, cap = n * 40 + 64, k = 0;
    char *j = malloc(cap);
    k += (size_t)snprintf(j, cap, "{\"weight_map\": {");
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(j + k, cap - k, "%s\"t%zu\": \"s%zu.safetensors\"", i ? ", " : "", i,
                              i);
    snprintf(j + k, cap - k, "}}");
    index_fails(j, TSEAL_E_LIMIT, "weight_map names 4097 shards, over the limit of 4096");
    free(j);
}

Test(stindex, empty_input) {
    tseal_st_index *ix;
    tu_assert_err(tseal_st_index_parse(NULL, 0, NULL, &ix), TSEAL_E_CORRUPT, "<index>: ");
}
