;; primes.wat: the built-in `primes` kernel by hand, for the tests (they turn it into a module
;; with the `wat` crate). farm_run(lo, hi) counts the primes among lo..hi, exactly for every
;; u64: trial division by the primes below 100, then deterministic Miller-Rabin with Jim
;; Sinclair's bases. Multiplication modulo n is i64.mul/i64.rem_u below 2^32 and shift-and-add
;; above (slow, but exact). It imports nothing: a counting module.
(module
  (memory 1)
  (data (i32.const 0) "\02\03\05\07\0b\0d\11\13\17\1d\1f\25\29\2b\2f\35\3b\3d\43\47\49\4f\53\59\61")
  ;; (a + b) mod n for a, b < n, without overflow.
  (func $addmod (param $a i64) (param $b i64) (param $n i64) (result i64)
    (local $s i64)
    (local.set $s (i64.add (local.get $a) (local.get $b)))
    (if (result i64)
      (i32.or (i64.lt_u (local.get $s) (local.get $a)) (i64.ge_u (local.get $s) (local.get $n)))
      (then (i64.sub (local.get $s) (local.get $n)))
      (else (local.get $s))))

  ;; (a * b) mod n for a, b < n.
  (func $mulmod (param $a i64) (param $b i64) (param $n i64) (result i64)
    (local $r i64)
    (if (i64.le_u (local.get $n) (i64.const 0xffffffff))
      (then (return (i64.rem_u (i64.mul (local.get $a) (local.get $b)) (local.get $n)))))
    (block $done
      (loop $bits
        (br_if $done (i64.eqz (local.get $b)))
        (if (i64.ne (i64.and (local.get $b) (i64.const 1)) (i64.const 0))
          (then (local.set $r (call $addmod (local.get $r) (local.get $a) (local.get $n)))))
        (local.set $a (call $addmod (local.get $a) (local.get $a) (local.get $n)))
        (local.set $b (i64.shr_u (local.get $b) (i64.const 1)))
        (br $bits)))
    (local.get $r))

  ;; base^exp mod n.
  (func $powmod (param $base i64) (param $exp i64) (param $n i64) (result i64)
    (local $acc i64)
    (local.set $acc (i64.const 1))
    (block $done
      (loop $bits
        (br_if $done (i64.eqz (local.get $exp)))
        (if (i64.ne (i64.and (local.get $exp) (i64.const 1)) (i64.const 0))
          (then (local.set $acc (call $mulmod (local.get $acc) (local.get $base) (local.get $n)))))
        (local.set $base (call $mulmod (local.get $base) (local.get $base) (local.get $n)))
        (local.set $exp (i64.shr_u (local.get $exp) (i64.const 1)))
        (br $bits)))
    (local.get $acc))

  ;; Whether base a witnesses that odd n = d * 2^s + 1 is composite.
  (func $witness (param $a i64) (param $d i64) (param $s i64) (param $n i64) (result i32)
    (local $x i64) (local $i i64)
    (local.set $a (i64.rem_u (local.get $a) (local.get $n)))
    (if (i64.eqz (local.get $a)) (then (return (i32.const 0))))
    (local.set $x (call $powmod (local.get $a) (local.get $d) (local.get $n)))
    (if (i64.eq (local.get $x) (i64.const 1)) (then (return (i32.const 0))))
    (if (i64.eq (local.get $x) (i64.sub (local.get $n) (i64.const 1))) (then (return (i32.const 0))))
    (local.set $i (i64.const 1))
    (block $done
      (loop $squares
        (br_if $done (i64.ge_u (local.get $i) (local.get $s)))
        (local.set $x (call $mulmod (local.get $x) (local.get $x) (local.get $n)))
        (if (i64.eq (local.get $x) (i64.sub (local.get $n) (i64.const 1)))
          (then (return (i32.const 0))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $squares)))
    (i32.const 1))

  ;; Trial division by p: 1 if n is p, 0 if p divides n, -1 if neither.
  (func $trial (param $n i64) (param $p i64) (result i32)
    (if (i64.eq (local.get $n) (local.get $p)) (then (return (i32.const 1))))
    (if (i64.eqz (i64.rem_u (local.get $n) (local.get $p))) (then (return (i32.const 0))))
    (i32.const -1))

  (func $is_prime (param $n i64) (result i32)
    (local $p i64) (local $t i32) (local $d i64) (local $s i64)
    (if (i64.lt_u (local.get $n) (i64.const 2)) (then (return (i32.const 0))))
    ;; the primes below 100, one byte each at address 0
    (local.set $p (i64.const 0))
    (block $done
      (loop $primes
        (br_if $done (i64.ge_u (local.get $p) (i64.const 25)))
        (local.set $t
          (call $trial (local.get $n) (i64.load8_u (i32.wrap_i64 (local.get $p)))))
        (if (i32.ge_s (local.get $t) (i32.const 0)) (then (return (local.get $t))))
        (local.set $p (i64.add (local.get $p) (i64.const 1)))
        (br $primes)))
    (if (i64.lt_u (local.get $n) (i64.const 10201)) (then (return (i32.const 1))))
    (local.set $d (i64.sub (local.get $n) (i64.const 1)))
    (local.set $s (i64.ctz (local.get $d)))
    (local.set $d (i64.shr_u (local.get $d) (local.get $s)))
    (if (call $witness (i64.const 2) (local.get $d) (local.get $s) (local.get $n)) (then (return (i32.const 0))))
    (if (call $witness (i64.const 325) (local.get $d) (local.get $s) (local.get $n)) (then (return (i32.const 0))))
    (if (call $witness (i64.const 9375) (local.get $d) (local.get $s) (local.get $n)) (then (return (i32.const 0))))
    (if (call $witness (i64.const 28178) (local.get $d) (local.get $s) (local.get $n)) (then (return (i32.const 0))))
    (if (call $witness (i64.const 450775) (local.get $d) (local.get $s) (local.get $n)) (then (return (i32.const 0))))
    (if (call $witness (i64.const 9780504) (local.get $d) (local.get $s) (local.get $n)) (then (return (i32.const 0))))
    (if (call $witness (i64.const 1795265022) (local.get $d) (local.get $s) (local.get $n)) (then (return (i32.const 0))))
    (i32.const 1))

  (func (export "farm_run") (param $lo i64) (param $hi i64) (result i64)
    (local $count i64)
    (block $done
      (loop $indices
        (br_if $done (i64.ge_u (local.get $lo) (local.get $hi)))
        (local.set $count
          (i64.add (local.get $count) (i64.extend_i32_u (call $is_prime (local.get $lo)))))
        (local.set $lo (i64.add (local.get $lo) (i64.const 1)))
        (br $indices)))
    (local.get $count)))
