/* primes.c: counts the primes among lo..hi, exactly like farm's built-in `primes` kernel:
 * trial division by the primes below 100, then deterministic Miller-Rabin with Jim Sinclair's
 * bases (exact for every u64). No libc and no 128-bit arithmetic (which would need compiler-rt):
 * above 2^32, multiplication modulo n is Montgomery multiplication on 64-bit halves.
 *
 * Build: clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export=farm_run \
 *          -o primes.wasm primes.c
 * Run:   farm run wasm --module primes.wasm --range 0..10000000 */
#include "farm.h"

static const uint64_t SMALL[25] = {2,  3,  5,  7,  11, 13, 17, 19, 23, 29, 31, 37, 41,
                                   43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97};
static const uint64_t BASES[7] = {2, 325, 9375, 28178, 450775, 9780504, 1795265022};

/* The high 64 bits of a * b. */
static uint64_t mul_hi(uint64_t a, uint64_t b) {
    uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/* Montgomery arithmetic modulo an odd n, R = 2^64. */
typedef struct {
    uint64_t n, ninv, one, r2;
} mont;

/* a * b * R^-1 mod n, for a, b < n. */
static uint64_t mont_mul(const mont *m, uint64_t a, uint64_t b) {
    uint64_t lo = a * b, hi = mul_hi(a, b);
    uint64_t q = lo * m->ninv;
    uint64_t t = hi + mul_hi(q, m->n) + (lo != 0);
    if (t < hi || t >= m->n) t -= m->n;
    return t;
}

static mont mont_new(uint64_t n) {
    mont m;
    m.n = n;
    uint64_t inv = n; /* Newton: correct to 3 bits at start, doubling each step. */
    for (int i = 0; i < 5; i++) inv *= 2 - n * inv;
    m.ninv = 0 - inv;
    m.one = (0 - n) % n; /* R mod n */
    uint64_t r = m.one;  /* doubled 64 times: R^2 mod n */
    for (int i = 0; i < 64; i++) {
        uint64_t d = r << 1;
        if ((r >> 63) || d >= n) d -= n;
        r = d;
    }
    m.r2 = r;
    return m;
}

static int miller_rabin_large(uint64_t n) {
    mont m = mont_new(n);
    uint64_t d = n - 1;
    int s = 0;
    while (!(d & 1)) {
        d >>= 1;
        s++;
    }
    uint64_t minus_one = n - m.one;
    for (int b = 0; b < 7; b++) {
        uint64_t a = BASES[b] % n;
        if (a == 0) continue;
        uint64_t base = mont_mul(&m, a, m.r2), x = m.one;
        for (uint64_t e = d; e; e >>= 1) {
            if (e & 1) x = mont_mul(&m, x, base);
            base = mont_mul(&m, base, base);
        }
        if (x == m.one || x == minus_one) continue;
        int composite = 1;
        for (int i = 1; i < s; i++) {
            x = mont_mul(&m, x, x);
            if (x == minus_one) {
                composite = 0;
                break;
            }
        }
        if (composite) return 0;
    }
    return 1;
}

static int miller_rabin_small(uint64_t n) {
    uint64_t d = n - 1;
    int s = 0;
    while (!(d & 1)) {
        d >>= 1;
        s++;
    }
    for (int b = 0; b < 7; b++) {
        uint64_t a = BASES[b] % n;
        if (a == 0) continue;
        uint64_t x = 1, base = a;
        for (uint64_t e = d; e; e >>= 1) {
            if (e & 1) x = x * base % n;
            base = base * base % n;
        }
        if (x == 1 || x == n - 1) continue;
        int composite = 1;
        for (int i = 1; i < s; i++) {
            x = x * x % n;
            if (x == n - 1) {
                composite = 0;
                break;
            }
        }
        if (composite) return 0;
    }
    return 1;
}

static int is_prime(uint64_t n) {
    if (n < 2) return 0;
    for (int i = 0; i < 25; i++) {
        if (n == SMALL[i]) return 1;
        if (n % SMALL[i] == 0) return 0;
    }
    if (n < 101 * 101) return 1;
    return n <= 0xffffffffu ? miller_rabin_small(n) : miller_rabin_large(n);
}

uint64_t farm_run(uint64_t lo, uint64_t hi) {
    uint64_t count = 0;
    for (uint64_t i = lo; i < hi; i++) count += is_prime(i);
    return count;
}
