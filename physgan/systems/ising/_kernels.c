/* Monte Carlo kernels for the 2D Ising model, H = -sum_<ij> s_i s_j on an L x L torus.
 *
 * This file is a CPython extension only so that setuptools builds and installs it; the module it
 * defines is empty. physgan.systems.ising.kernels calls the plain C functions below with ctypes.
 *
 * Random numbers: every chain owns one xoshiro128** generator (Blackman & Vigna, ACM TOMS 47, 36
 * (2021)), stored as two uint64 words (w0 = s0 | s1 << 32, w1 = s2 | s3 << 32). A chain's result
 * therefore depends only on its own spins and state: no random numbers are shared between chains,
 * and results do not depend on the thread count or on how chains are grouped.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define EXPORT __attribute__((visibility("default")))
#else
#define EXPORT
#endif

/* The Metropolis inner loop is vectorised over chains; build it for AVX-512, AVX2 and baseline
 * x86-64 and let the loader pick the best one for the running CPU (no -march=native needed). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SIMD_CLONES
#endif

/* Chains per SIMD block: each lane of the inner loop is one chain. */
#define LANES 32

static inline uint32_t rotl32(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

/* One xoshiro128** step on a state held in four separate words (so that the Metropolis loop can
 * keep one word per lane in its own array and vectorise). */
static inline uint32_t xoshiro_step(uint32_t *s0, uint32_t *s1, uint32_t *s2, uint32_t *s3)
{
    uint32_t r = rotl32(*s1 * 5u, 7) * 9u, t = *s1 << 9;
    *s2 ^= *s0;
    *s3 ^= *s1;
    *s1 ^= *s2;
    *s0 ^= *s3;
    *s2 ^= t;
    *s3 = rotl32(*s3, 11);
    return r;
}

static inline uint32_t xoshiro128ss(uint32_t s[4]) { return xoshiro_step(s, s + 1, s + 2, s + 3); }

static void load_state(const uint64_t w[2], uint32_t s[4])
{
    s[0] = (uint32_t)w[0];
    s[1] = (uint32_t)(w[0] >> 32);
    s[2] = (uint32_t)w[1];
    s[3] = (uint32_t)(w[1] >> 32);
}

static void store_state(const uint32_t s[4], uint64_t w[2])
{
    w[0] = s[0] | (uint64_t)s[1] << 32;
    w[1] = s[2] | (uint64_t)s[3] << 32;
}

/* Accept iff a uniform 32-bit r < threshold(p): probability p to within 2^-33. */
static uint32_t threshold(double p)
{
    double t = ldexp(p, 32);
    return t >= 4294967295.0 ? UINT32_MAX : (uint32_t)llround(t);
}

/* ---------------------------------------------------------------------------------------------
 * Checkerboard Metropolis. A block holds LANES chains transposed to buf[site * LANES + lane] and
 * their generators as struct-of-arrays, so every site update is one branch-free vector operation
 * over LANES chains. dE = 2 s h with s h in {-4, -2, 0, 2, 4}: accept if s h <= 0, else with
 * probability exp(-4 beta) (s h = 2) or exp(-8 beta) (s h = 4).
 */
typedef struct {
    uint32_t s0[LANES], s1[LANES], s2[LANES], s3[LANES];
} lanes_rng;

SIMD_CLONES
static void metropolis_block(int8_t *restrict buf, int64_t L, lanes_rng *restrict g, uint32_t t4,
                             uint32_t t8, int64_t n_sweeps)
{
    lanes_rng st = *g; /* a local copy the compiler can keep in registers */
    for (int64_t sweep = 0; sweep < n_sweeps; sweep++)
        for (int64_t colour = 0; colour < 2; colour++)
            for (int64_t y = 0; y < L; y++) {
                const int8_t *row = buf + y * L * LANES;
                const int8_t *up = buf + (y + L - 1) % L * L * LANES;
                const int8_t *dn = buf + (y + 1) % L * L * LANES;
                for (int64_t x = (y + colour) & 1; x < L; x += 2) {
                    int8_t *s = buf + (y * L + x) * LANES;
                    const int8_t *lf = row + (x + L - 1) % L * LANES;
                    const int8_t *rt = row + (x + 1) % L * LANES;
                    const int8_t *u = up + x * LANES, *d = dn + x * LANES;
                    for (int k = 0; k < LANES; k++) {
                        uint32_t r = xoshiro_step(st.s0 + k, st.s1 + k, st.s2 + k, st.s3 + k);
                        int8_t sh = (int8_t)(s[k] * (u[k] + d[k] + lf[k] + rt[k]));
                        uint32_t thr = sh == 2 ? t4 : t8;
                        int8_t flip = (int8_t)((sh <= 0) | (r < thr));
                        s[k] = (int8_t)(s[k] - 2 * flip * s[k]);
                    }
                }
            }
    *g = st;
}

/* Gather up to LANES chains into a block (missing lanes get dummy chains that are discarded). */
static void block_in(const int8_t *spins, const uint64_t *rng, int64_t n, int64_t N, int8_t *buf,
                     lanes_rng *g)
{
    for (int k = 0; k < LANES; k++) {
        uint32_t s[4] = {0x9E3779B9u, 1u, 2u, 3u + (uint32_t)k};
        if (k < n)
            load_state(rng + 2 * k, s);
        g->s0[k] = s[0];
        g->s1[k] = s[1];
        g->s2[k] = s[2];
        g->s3[k] = s[3];
        for (int64_t i = 0; i < N; i++)
            buf[i * LANES + k] = k < n ? spins[k * N + i] : 1;
    }
}

static void block_out(const int8_t *buf, const lanes_rng *g, int64_t n, int64_t N, int8_t *spins,
                      uint64_t *rng)
{
    for (int64_t k = 0; k < n; k++) {
        uint32_t s[4] = {g->s0[k], g->s1[k], g->s2[k], g->s3[k]};
        store_state(s, rng + 2 * k);
        for (int64_t i = 0; i < N; i++)
            spins[k * N + i] = buf[i * LANES + k];
    }
}

/* n_sweeps checkerboard sweeps of every chain. spins: int8 (n_chains, L, L) of +-1, L even;
 * rng: uint64 (n_chains, 2). Returns 0, or -1 if memory ran out. */
EXPORT int ising_metropolis(int8_t *spins, int64_t n_chains, int64_t L, uint64_t *rng, double beta,
                            int64_t n_sweeps)
{
    const int64_t N = L * L, n_blocks = (n_chains + LANES - 1) / LANES;
    const uint32_t t4 = threshold(exp(-4.0 * beta)), t8 = threshold(exp(-8.0 * beta));
    int failed = 0;
#pragma omp parallel for schedule(dynamic) reduction(| : failed)
    for (int64_t b = 0; b < n_blocks; b++) {
        int64_t first = b * LANES, n = n_chains - first < LANES ? n_chains - first : LANES;
        int8_t *buf = malloc((size_t)(N * LANES));
        lanes_rng g;
        if (!buf) {
            failed = 1;
            continue;
        }
        block_in(spins + first * N, rng + 2 * first, n, N, buf, &g);
        metropolis_block(buf, L, &g, t4, t8, n_sweeps);
        block_out(buf, &g, n, N, spins + first * N, rng + 2 * first);
        free(buf);
    }
    return failed ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Wolff single-cluster updates (Wolff, PRL 62, 361 (1989)), one chain per thread.
 */

/* Uniform integer in [0, n) without bias (Lemire, ACM TOMACS 29, 3 (2019)). */
static uint32_t uniform_below(uint32_t s[4], uint32_t n)
{
    uint64_t m = (uint64_t)xoshiro128ss(s) * n;
    if ((uint32_t)m < n) {
        uint32_t lim = (uint32_t)-n % n;
        while ((uint32_t)m < lim)
            m = (uint64_t)xoshiro128ss(s) * n;
    }
    return (uint32_t)(m >> 32);
}

/* Grows and flips n_clusters clusters with an explicit stack; returns the number of spins flipped.
 * A spin is flipped when it joins, so the "aligned with the seed" test also marks visited sites. */
static int64_t wolff_chain(int8_t *s, int64_t L, uint32_t rng[4], uint32_t t_add,
                           int64_t n_clusters, int32_t *stack)
{
    const int32_t N = (int32_t)(L * L), Li = (int32_t)L;
    int64_t flipped = 0;
    for (int64_t c = 0; c < n_clusters; c++) {
        int32_t seed = (int32_t)uniform_below(rng, (uint32_t)N), top = 0;
        int8_t s0 = s[seed];
        s[seed] = (int8_t)-s0;
        stack[top++] = seed;
        flipped++;
        while (top > 0) {
            int32_t i = stack[--top], x = i % Li; /* wrap with selects, not more divisions */
            int32_t nb[4] = {x + 1 < Li ? i + 1 : i + 1 - Li, x > 0 ? i - 1 : i - 1 + Li,
                             i + Li < N ? i + Li : i + Li - N, i >= Li ? i - Li : i - Li + N};
            /* Branch-free: whether a bond joins is a coin toss the CPU cannot predict. */
            for (int j = 0; j < 4; j++) {
                int8_t join = (int8_t)((s[nb[j]] == s0) & (xoshiro128ss(rng) < t_add));
                s[nb[j]] = (int8_t)(s[nb[j]] - 2 * join * s0);
                stack[top] = nb[j];
                top += join;
                flipped += join;
            }
        }
    }
    return flipped;
}

/* spins: int8 (n_chains, L, L), any L >= 2 with L * L < 2^31; rng: uint64 (n_chains, 2);
 * flipped: int64 (n_chains,) receives the spins flipped per chain. Returns 0, or -1 if out of memory. */
EXPORT int ising_wolff(int8_t *spins, int64_t n_chains, int64_t L, uint64_t *rng, double beta,
                       int64_t n_clusters, int64_t *flipped)
{
    const int64_t N = L * L;
    const uint32_t t_add = threshold(1.0 - exp(-2.0 * beta));
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        int32_t *stack = malloc((size_t)N * sizeof *stack);
        if (!stack)
            failed = 1;
#pragma omp for schedule(dynamic)
        for (int64_t i = 0; i < n_chains; i++) {
            uint32_t s[4];
            if (!stack)
                continue;
            load_state(rng + 2 * i, s);
            flipped[i] = wolff_chain(spins + i * N, L, s, t_add, n_clusters, stack);
            store_state(s, rng + 2 * i);
        }
        free(stack);
    }
    return failed ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------------
 * The (empty) Python module. */
static struct PyModuleDef kernels_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_kernels",
    .m_doc = "Ising Monte Carlo kernels, called through ctypes.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&kernels_module); }
