/*
 * test_gpu_audit.c - `tseal audit --device gpu`: every tensor decoded by the CUDA kernel must
 * hash to its signed digest, exactly as the CPU audit finds (skips without a CUDA device).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tseal.h"
#include "tseal_crypto.h"
#include "../key_testutil.h"

Test(gpu_audit, decodes_every_tensor_on_the_gpu_bit_exactly, .timeout = 300) {
    if (tseal_gpu_device_count() == 0) cr_skip_test("no CUDA device: %s", tseal_errmsg());
    char dir[] = "/tmp/tseal-gpu-audit-XXXXXX", p[8][128];
    cr_assert_not_null(mkdtemp(dir));
    const char *names[8] = {"model", "m.tseal", "v.key", "v.pub",
                            "r.key", "r.pub",   "a.key", "report.json"};
    for (int i = 0; i < 8; i++) snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
    tseal_synth_opts so = {.preset = "small", .seed = 3, .shards = 2};
    cr_assert_eq(tseal_synth_model(p[0], &so), 0, "%s", tseal_errmsg());
    tu_keypair(TSEAL_KEY_SIGN, "test", 1, p[2], p[3]);
    tu_keypair(TSEAL_KEY_RECIPIENT, "test", 2, p[4], p[5]);
    char apub[160];
    snprintf(apub, sizeof apub, "%s.pub", p[6]);
    tu_keypair(TSEAL_KEY_SIGN, "test", 3, p[6], apub);
    const char *rec[1] = {p[5]}, *trust[1] = {p[3]};
    tseal_pack_opts po = {.model_id = "gpu/test",
                          .version = 1,
                          .sign_key = p[2],
                          .recipients = rec,
                          .n_recipients = 1};
    cr_assert_eq(tseal_pack(p[0], p[1], &po, NULL), 0, "%s", tseal_errmsg());
    tseal_audit_opts ao = {.key = p[4],
                           .trust = trust,
                           .n_trust = 1,
                           .reference = p[0],
                           .device = "gpu",
                           .report = p[7],
                           .audit_key = p[6]};
    tseal_audit_result res;
    cr_assert_eq(tseal_audit(p[1], &ao, &res), 0, "%s", tseal_errmsg());
    cr_assert_str_eq(res.device, "gpu");
    cr_assert(res.passed && res.tensors > 0 && res.tensors == res.tensors_ok);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
