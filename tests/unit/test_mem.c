/* test_mem.c - buffer classification.  Host pointers are host memory in
 * every build; with CUDA and a device, cudaMalloc'd memory is CUDA memory.
 * Without a device the CUDA half is skipped with a message. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "mem/mem.h"

#if TALLY_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

START_TEST(test_host_is_host)
{
    bool cuda = tally_mem_cuda_available();
    int on_stack = 0;
    void *on_heap = malloc(64);
    ck_assert_int_eq(tally_mem_classify(&on_stack, cuda), TALLY_MEM_HOST);
    ck_assert_int_eq(tally_mem_classify(on_heap, cuda), TALLY_MEM_HOST);
    ck_assert_int_eq(tally_mem_classify(NULL, cuda), TALLY_MEM_HOST);
    ck_assert_str_eq(tally_memtype_name(TALLY_MEM_HOST), "host");
    ck_assert_str_eq(tally_memtype_name(TALLY_MEM_CUDA), "cuda");
    free(on_heap);
}
END_TEST

START_TEST(test_cuda_device_memory)
{
#if TALLY_HAVE_CUDA
    if (!tally_mem_cuda_available()) {
        int n = 0;
        cudaError_t err = cudaGetDeviceCount(&n);
        printf("SKIP test_cuda_device_memory: no CUDA device visible (%s)\n",
               err == cudaSuccess ? "0 devices" : cudaGetErrorString(err));
        return;
    }
    void *dev = NULL;
    ck_assert_int_eq(cudaMalloc(&dev, 4096), cudaSuccess);
    ck_assert_int_eq(tally_mem_classify(dev, true), TALLY_MEM_CUDA);
    /* Without the cached answer, tally never asks CUDA. */
    ck_assert_int_eq(tally_mem_classify(dev, false), TALLY_MEM_HOST);
    cudaFree(dev);
#else
    ck_assert(!tally_mem_cuda_available());
    printf("SKIP test_cuda_device_memory: built without CUDA\n");
#endif
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mem");
    TCase *tc = tcase_create("mem");
    tcase_add_test(tc, test_host_is_host);
    tcase_add_test(tc, test_cuda_device_memory);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK); /* so the SKIP line reaches stdout in order */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
