/* kernels.cu - the device kernel table (reduce/reduce.h's tally_kernels_t)
 * for CUDA memory: every dtype x op, with the host kernels' semantics bit
 * for bit (integer SUM and PROD wrap, MIN and MAX propagate NaN, float16
 * and bfloat16 computed in float and rounded by the same conversions,
 * reduce/convert.h).  Built with --fmad=false so that no multiply and add
 * fuse where the host rounds twice.
 *
 * One grid-stride kernel per (dtype, op): 16-byte vector loads and stores
 * where all three pointers are 16-byte aligned, element by element for the
 * tail (and for unaligned pointers).  dst may be a or b exactly, as on the
 * host.  Each entry runs on the calling thread's default stream and
 * returns when done; a failure stays in the runtime's last error for the
 * backend's check(). */
#include <cuda_runtime.h>
#include <stdint.h>
#include <type_traits>

#include "../reduce/convert.h"
#include "kernels.h" /* reduce.h's types; nothing of it is called here */

namespace {

/* Storage type T, compute type C, and the loads and stores between them. */
struct Half {
    using T = uint16_t;
    using C = float;
    static __device__ C load(T v) { return tally_cvt_half_to_float(v); }
    static __device__ T store(C v) { return tally_cvt_float_to_half(v); }
};
struct Bf16 {
    using T = uint16_t;
    using C = float;
    static __device__ C load(T v) { return tally_cvt_bf16_to_float(v); }
    static __device__ T store(C v) { return tally_cvt_float_to_bf16(v); }
};
template <typename S> struct Plain {
    using T = S;
    using C = S;
    static __device__ C load(T v) { return v; }
    static __device__ T store(C v) { return v; }
};

/* Ops on the compute type; U is the unsigned twin for wrapping. */
template <typename C> using U = typename std::make_unsigned<C>::type;
template <typename C> __device__ U<C> nz(C v) { return (U<C>)((U<C>)v | (U<C>)(0u - (U<C>)v)); }
template <typename C> __device__ C logical(U<C> bits) { return (C)(bits >> (sizeof(C) * 8 - 1)); }

struct Sum { template <typename C> static __device__ C int_op(C x, C y) { return (C)((U<C>)x + (U<C>)y); }
             template <typename C> static __device__ C float_op(C x, C y) { return x + y; } };
struct Prod { template <typename C> static __device__ C int_op(C x, C y) { return (C)(1u * (U<C>)x * (U<C>)y); }
              template <typename C> static __device__ C float_op(C x, C y) { return x * y; } };
struct Min { template <typename C> static __device__ C int_op(C x, C y) { return x < y ? x : y; }
             template <typename C> static __device__ C float_op(C x, C y) { return (x < y || x != x) ? x : y; } };
struct Max { template <typename C> static __device__ C int_op(C x, C y) { return x > y ? x : y; }
             template <typename C> static __device__ C float_op(C x, C y) { return (x > y || x != x) ? x : y; } };
struct Band { template <typename C> static __device__ C int_op(C x, C y) { return (C)(x & y); } };
struct Bor { template <typename C> static __device__ C int_op(C x, C y) { return (C)(x | y); } };
struct Bxor { template <typename C> static __device__ C int_op(C x, C y) { return (C)(x ^ y); } };
struct Land { template <typename C> static __device__ C int_op(C x, C y) { return logical<C>(nz(x) & nz(y)); } };
struct Lor { template <typename C> static __device__ C int_op(C x, C y) { return logical<C>(nz(x) | nz(y)); } };
struct Lxor { template <typename C> static __device__ C int_op(C x, C y) { return logical<C>(nz(x) ^ nz(y)); } };

template <typename D, typename Op, bool Float> struct Apply {
    static __device__ typename D::T run(typename D::T a, typename D::T b)
    {
        if constexpr (Float)
            return D::store(Op::template float_op<typename D::C>(D::load(a), D::load(b)));
        else
            return Op::template int_op<typename D::C>(a, b);
    }
};

constexpr int THREADS = 256;
constexpr unsigned MAX_BLOCKS = 4096;

template <typename D, typename Op, bool Float>
__global__ void reduce_kernel(typename D::T *dst, const typename D::T *a,
                              const typename D::T *b, size_t n)
{
    using T = typename D::T;
    constexpr int V = 16 / sizeof(T);
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const bool aligned = (((uintptr_t)dst | (uintptr_t)a | (uintptr_t)b) & 15u) == 0;
    const size_t vectors = aligned ? n / V : 0;
    for (size_t i = tid; i < vectors; i += stride) {
        uint4 va = reinterpret_cast<const uint4 *>(a)[i];
        uint4 vb = reinterpret_cast<const uint4 *>(b)[i];
        uint4 vd;
        const T *ea = reinterpret_cast<const T *>(&va);
        const T *eb = reinterpret_cast<const T *>(&vb);
        T *ed = reinterpret_cast<T *>(&vd);
#pragma unroll
        for (int j = 0; j < V; j++)
            ed[j] = Apply<D, Op, Float>::run(ea[j], eb[j]);
        reinterpret_cast<uint4 *>(dst)[i] = vd;
    }
    for (size_t i = vectors * V + tid; i < n; i += stride)
        dst[i] = Apply<D, Op, Float>::run(a[i], b[i]);
}

template <typename D>
__global__ void divide_kernel(typename D::T *buf, size_t n, typename D::C divisor)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        buf[i] = D::store(D::load(buf[i]) / divisor);
}

unsigned blocks_for(size_t n, size_t per_thread)
{
    const size_t want = (n + THREADS * per_thread - 1) / (THREADS * per_thread);
    return (unsigned)(want < MAX_BLOCKS ? (want ? want : 1) : MAX_BLOCKS);
}

template <typename D, typename Op, bool Float>
void reduce_entry(void *dst, const void *a, const void *b, size_t n)
{
    using T = typename D::T;
    if (n == 0)
        return;
    reduce_kernel<D, Op, Float><<<blocks_for(n, 16 / sizeof(T)), THREADS, 0, cudaStreamPerThread>>>(
        static_cast<T *>(dst), static_cast<const T *>(a), static_cast<const T *>(b), n);
    cudaStreamSynchronize(cudaStreamPerThread);
}

template <typename D> void divide_entry(void *buf, size_t n, int divisor)
{
    if (n == 0)
        return;
    divide_kernel<D><<<blocks_for(n, 4), THREADS, 0, cudaStreamPerThread>>>(
        static_cast<typename D::T *>(buf), n, (typename D::C)divisor);
    cudaStreamSynchronize(cudaStreamPerThread);
}

void copy_entry(void *dst, const void *src, size_t bytes)
{
    if (dst != src && bytes > 0)
        cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, cudaStreamPerThread);
    cudaStreamSynchronize(cudaStreamPerThread);
}

template <typename S> void int_row(tally_kernels_t *k, tally_dtype_t d)
{
    using D = Plain<S>;
    tally_reduce_fn *row = k->reduce[d];
    row[TALLY_SUM] = reduce_entry<D, Sum, false>;
    row[TALLY_PROD] = reduce_entry<D, Prod, false>;
    row[TALLY_MIN] = reduce_entry<D, Min, false>;
    row[TALLY_MAX] = reduce_entry<D, Max, false>;
    row[TALLY_BAND] = reduce_entry<D, Band, false>;
    row[TALLY_BOR] = reduce_entry<D, Bor, false>;
    row[TALLY_BXOR] = reduce_entry<D, Bxor, false>;
    row[TALLY_LAND] = reduce_entry<D, Land, false>;
    row[TALLY_LOR] = reduce_entry<D, Lor, false>;
    row[TALLY_LXOR] = reduce_entry<D, Lxor, false>;
}

template <typename D> void float_row(tally_kernels_t *k, tally_dtype_t d)
{
    tally_reduce_fn *row = k->reduce[d];
    row[TALLY_SUM] = reduce_entry<D, Sum, true>;
    row[TALLY_AVG] = reduce_entry<D, Sum, true>; /* AVG reduces as SUM, then divide */
    row[TALLY_PROD] = reduce_entry<D, Prod, true>;
    row[TALLY_MIN] = reduce_entry<D, Min, true>;
    row[TALLY_MAX] = reduce_entry<D, Max, true>;
    k->divide[d] = divide_entry<D>;
}

tally_kernels_t make_table()
{
    tally_kernels_t k = {};
    k.name = "cuda";
    k.copy = copy_entry;
    int_row<int8_t>(&k, TALLY_INT8);
    int_row<uint8_t>(&k, TALLY_UINT8);
    int_row<int16_t>(&k, TALLY_INT16);
    int_row<uint16_t>(&k, TALLY_UINT16);
    int_row<int32_t>(&k, TALLY_INT32);
    int_row<uint32_t>(&k, TALLY_UINT32);
    int_row<int64_t>(&k, TALLY_INT64);
    int_row<uint64_t>(&k, TALLY_UINT64);
    float_row<Half>(&k, TALLY_FLOAT16);
    float_row<Bf16>(&k, TALLY_BFLOAT16);
    float_row<Plain<float>>(&k, TALLY_FLOAT32);
    float_row<Plain<double>>(&k, TALLY_FLOAT64);
    return k;
}

} // namespace

extern "C" const tally_kernels_t *tally_cuda_kernels(void)
{
    static const tally_kernels_t table = make_table();
    return &table;
}
