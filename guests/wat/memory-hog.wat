;; memory-hog: grows memory one 64 KiB page at a time, storing into each new page, until
;; memory.grow returns -1; then proc_exit(3). Under a limiter that refuses growth it exits 3;
;; under a host that traps on the limit it traps. Prints nothing.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func $_start (export "_start")
    (local $old i32)
    (block $done
      (loop $grow
        (local.set $old (memory.grow (i32.const 1)))
        (br_if $done (i32.eq (local.get $old) (i32.const -1)))
        ;; touch the first word of the new page (address = old page count * 65536)
        (i32.store (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xdeadbeef))
        (br $grow)))
    (call $proc_exit (i32.const 3))))
