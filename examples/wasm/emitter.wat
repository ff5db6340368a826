;; A list module, for farm's tests: for each index it emits the param `prefix` followed by a
;; letter (a + index mod 26); given an input line, it emits the line as is.
(module
  (import "farm" "param" (func $param (param i32 i32 i32 i32) (result i32)))
  (import "farm" "emit" (func $emit (param i32 i32)))
  (import "farm" "input" (func $input (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "prefix")
  (func (export "farm_run") (param $lo i64) (param $hi i64) (result i64)
    (local $n i32) (local $len i32)
    (local.set $len (call $input (i32.const 100) (i32.const 100)))
    (if (i32.ge_s (local.get $len) (i32.const 0))
      (then (call $emit (i32.const 100) (local.get $len)) (return (i64.const 0))))
    (local.set $n (call $param (i32.const 0) (i32.const 6) (i32.const 200) (i32.const 50)))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then (local.set $n (i32.const 0))))
    (block $done (loop $each
      (br_if $done (i64.ge_u (local.get $lo) (local.get $hi)))
      (i32.store8 (i32.add (i32.const 200) (local.get $n))
        (i32.add (i32.const 97) (i32.wrap_i64 (i64.rem_u (local.get $lo) (i64.const 26)))))
      (call $emit (i32.const 200) (i32.add (local.get $n) (i32.const 1)))
      (local.set $lo (i64.add (local.get $lo) (i64.const 1)))
      (br $each)))
    (i64.const 0)))
