/* preload_device.c - an ordinary CUDA-aware MPI program: MPI_Allreduce on
 * cudaMalloc'd buffers, in place and not, float and int, at awkward counts.
 * Under libtally-preload.so it must give the right sums even when the MPI
 * itself cannot read device memory (tests/gpu/run.sh runs it there; without
 * the preload such an MPI would crash on it).  Exits non-zero on a wrong
 * element. */
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const int counts[] = {1, 1000, 1 << 20, 3 * (1 << 20) + 7};
    int bad = 0;
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        const int n = counts[c];
        float *h = malloc((size_t)n * sizeof *h);
        int *hi = malloc((size_t)n * sizeof *hi);
        float *d_in, *d_out;
        int *d_int;
        if (cudaMalloc((void **)&d_in, (size_t)n * sizeof(float)) != cudaSuccess ||
            cudaMalloc((void **)&d_out, (size_t)n * sizeof(float)) != cudaSuccess ||
            cudaMalloc((void **)&d_int, (size_t)n * sizeof(int)) != cudaSuccess) {
            fprintf(stderr, "preload_device: cudaMalloc failed\n");
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
        for (int i = 0; i < n; i++) {
            h[i] = (float)((i + rank) % 7);
            hi[i] = i * (rank + 1);
        }
        cudaMemcpy(d_in, h, (size_t)n * sizeof(float), cudaMemcpyHostToDevice);
        cudaMemcpy(d_int, hi, (size_t)n * sizeof(int), cudaMemcpyHostToDevice);
        MPI_Allreduce(d_in, d_out, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, d_int, n, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        cudaMemcpy(h, d_out, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost);
        cudaMemcpy(hi, d_int, (size_t)n * sizeof(int), cudaMemcpyDeviceToHost);
        for (int i = 0; i < n; i++) {
            float want = 0;
            for (int r = 0; r < size; r++)
                want += (float)((i + r) % 7);
            const int want_i = i * (size * (size + 1) / 2);
            if (h[i] != want || hi[i] != want_i) {
                if (bad++ < 5)
                    fprintf(stderr, "rank %d: count %d element %d: %g (want %g), %d (want %d)\n",
                            rank, n, i, h[i], want, hi[i], want_i);
            }
        }
        cudaFree(d_int);
        cudaFree(d_out);
        cudaFree(d_in);
        free(hi);
        free(h);
    }
    int all = 0;
    MPI_Allreduce(&bad, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("preload_device: %s (%d wrong elements over %d ranks)\n", all ? "FAILED" : "ok",
               all, size);
    MPI_Finalize();
    return all != 0;
}
