;; cat: copies stdin to stdout until end of input; exits 2 if reading stdin fails.
;; Used to check that stdin is closed unless `skiff run -i` grants it.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; read iovec at 0 (buf 64, len 4096); bytes read at 16; write iovec at 32; bytes written at 48
  (func (export "_start")
    (local $n i32)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 4096))
    (loop $copy
      (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16))
        (then (call $proc_exit (i32.const 2))))
      (local.set $n (i32.load (i32.const 16)))
      (if (i32.eqz (local.get $n)) (then (return)))
      (i32.store (i32.const 32) (i32.const 64))
      (i32.store (i32.const 36) (local.get $n))
      (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 48)))
      (br $copy))))
