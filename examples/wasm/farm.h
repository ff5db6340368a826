/* farm.h: the farm wasm ABI for C (see docs/wasm.md). Build with
 *   clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export=farm_run -o k.wasm k.c
 * A module exports `uint64_t farm_run(uint64_t lo, uint64_t hi)`; the imports below are all
 * optional: import only what you use. */
#ifndef FARM_H
#define FARM_H

typedef unsigned long long uint64_t;
typedef long long int64_t;
typedef unsigned int uint32_t;
typedef int int32_t;

#define FARM_IMPORT(name) __attribute__((import_module("farm"), import_name(name)))

/* Copies the value of job param `name` (`--param name=value`) into out (at most cap bytes).
 * Returns the value's full length in bytes, or -1 if the job does not set it. */
FARM_IMPORT("param") int32_t farm_param(const char *name, int32_t name_len, char *out, int32_t cap);

/* Emits one item of a list result (UTF-8). Importing it makes the module a list kernel: the
 * job's result is every emitted item, shard after shard, in index order. */
FARM_IMPORT("emit") void farm_emit(const char *item, int32_t len);

/* Copies the shard's input line (an --inputs job) into out (at most cap bytes). Returns the
 * line's full length, or -1 for a range shard. */
FARM_IMPORT("input") int32_t farm_input(char *out, int32_t cap);

/* Adds n samples to the shard's count. Importing it makes the module a fraction kernel:
 * farm_run returns hits, and the job's result is {"hits", "samples", "estimate"} with
 * estimate = scale * hits / samples, the scale given by FARM_SCALE (default 1). */
FARM_IMPORT("samples") void farm_samples(uint64_t n);

/* The scale of a fraction kernel's estimate, as decimal text: FARM_SCALE("4") for pi. It
 * writes the custom section "farm_scale" (at file scope, once). */
#define FARM_SCALE(text) __asm__(".section .custom_section.farm_scale,\"\",@\n.ascii \"" text "\"\n")

/* Fails the shard with this message (UTF-8); does not return. */
FARM_IMPORT("fail") __attribute__((noreturn)) void farm_fail(const char *msg, int32_t len);

static inline int32_t farm_strlen(const char *s) {
    int32_t n = 0;
    while (s[n]) n++;
    return n;
}

/* Param `name` as a whole number, or `fallback` when the job does not set it; a value that is
 * not a whole number fails the shard. */
static inline uint64_t farm_param_u64(const char *name, uint64_t fallback) {
    char buf[32];
    int32_t len = farm_param(name, farm_strlen(name), buf, sizeof buf);
    if (len < 0) return fallback;
    if (len == 0 || len > (int32_t)sizeof buf) farm_fail("param is not a whole number", 27);
    uint64_t v = 0;
    for (int32_t i = 0; i < len; i++) {
        if (buf[i] < '0' || buf[i] > '9') farm_fail("param is not a whole number", 27);
        v = v * 10 + (uint64_t)(buf[i] - '0');
    }
    return v;
}

#endif
