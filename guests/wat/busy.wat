;; busy: a CPU-bound WASI command for bench/run.sh's skiff-vs-wasmtime row. _start runs 10^9
;; rounds of a multiply-add (a linear congruential step, so no round can be skipped) with no host
;; call, then exits with the low byte of the result (a fixed value: the work is deterministic).
;; About 1.1 s of CPU on this machine under wasmtime 49 (exit status 61).
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func $_start (export "_start")
    (local $i i32) (local $x i64)
    (local.set $x (i64.const 1))
    (loop $round
      (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005))
                             (i64.const 1442695040888963407)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $round (i32.lt_u (local.get $i) (i32.const 1000000000))))
    (call $proc_exit (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 56))
                                            (i64.const 127))))))
