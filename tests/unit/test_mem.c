/* test_mem.c - buffer classification and the device plugin (mem/device.h).
 * Without a backend every pointer is host memory and no device library is
 * called; a plugin that cannot be loaded, or sees no device, leaves no
 * backend and says why; with a GPU, memory from cudaMalloc (found through
 * the plugin, which links the runtime) is CUDA memory.  Without a device
 * that half is skipped with the reason. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlfcn.h>

#include "mem/mem.h"

#define PLUGIN_PATH TALLY_SOURCE_DIR "/build/lib/libtally-cuda.so"

START_TEST(test_host_is_host)
{
    tally_device_t dev;
    tally_device_open(&dev);
    int on_stack = 0;
    void *on_heap = malloc(64);
    ck_assert_int_eq(tally_mem_classify(&dev, &on_stack), TALLY_MEM_HOST);
    ck_assert_int_eq(tally_mem_classify(&dev, on_heap), TALLY_MEM_HOST);
    ck_assert_int_eq(tally_mem_classify(&dev, NULL), TALLY_MEM_HOST);
    ck_assert_str_eq(tally_memtype_name(TALLY_MEM_HOST), "host");
    ck_assert_str_eq(tally_memtype_name(TALLY_MEM_CUDA), "cuda");
    if (!dev.backend)
        ck_assert_msg(dev.why[0] != '\0', "no backend and no reason");
    tally_device_close(&dev);
    ck_assert_ptr_null(dev.backend);
    free(on_heap);
}
END_TEST

START_TEST(test_missing_plugin_says_why)
{
    tally_device_t dev;
    tally_device_open_path(&dev, "/nonexistent/libtally-cuda.so");
    ck_assert_ptr_null(dev.backend);
    ck_assert_ptr_null(dev.plugin);
    ck_assert_msg(strstr(dev.why, "/nonexistent/libtally-cuda.so") != NULL, "%s", dev.why);
    /* A library that is not a tally plugin is refused by name. */
    tally_device_open_path(&dev, "libm.so.6");
    ck_assert_ptr_null(dev.backend);
    ck_assert_msg(strstr(dev.why, "tally_device_backend_cuda") != NULL, "%s", dev.why);
    char line[512] = "";
    FILE *f = fmemopen(line, sizeof line, "w");
    tally_device_write(&dev, f);
    fclose(f);
    ck_assert_msg(strncmp(line, "device buffers: none: ", 22) == 0, "%s", line);
}
END_TEST

START_TEST(test_cuda_device_memory)
{
#if TALLY_HAVE_CUDA
    tally_device_t dev;
    tally_device_open_path(&dev, PLUGIN_PATH);
    if (!dev.backend) {
        printf("SKIP test_cuda_device_memory: no device through %s: %s\n", PLUGIN_PATH,
               dev.why);
        return;
    }
    /* The plugin links the CUDA runtime: take cudaMalloc from it. */
    int (*dev_malloc)(void **, size_t) = (int (*)(void **, size_t))dlsym(dev.plugin,
                                                                        "cudaMalloc");
    int (*dev_free)(void *) = (int (*)(void *))dlsym(dev.plugin, "cudaFree");
    ck_assert(dev_malloc && dev_free);
    void *mem = NULL;
    ck_assert_int_eq(dev_malloc(&mem, 4096), 0);
    ck_assert_int_eq(tally_mem_classify(&dev, mem), TALLY_MEM_CUDA);
    int on_stack = 0;
    ck_assert_int_eq(tally_mem_classify(&dev, &on_stack), TALLY_MEM_HOST);
    dev_free(mem);
    tally_device_close(&dev);
#else
    tally_device_t dev;
    tally_device_open(&dev);
    ck_assert_ptr_null(dev.backend);
    printf("SKIP test_cuda_device_memory: built without CUDA\n");
#endif
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mem");
    TCase *tc = tcase_create("mem");
    tcase_add_test(tc, test_host_is_host);
    tcase_add_test(tc, test_missing_plugin_says_why);
    tcase_add_test(tc, test_cuda_device_memory);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK); /* so the SKIP line reaches stdout in order */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
