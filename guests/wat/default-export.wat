;; default-export: a command in emscripten's shape, with no `_start`: `_initialize` sets up
;; state and the empty-named `""` export is main. wasmtime runs `_initialize` then `""`; main
;; says whether `_initialize` ran first.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $initialized (mut i32) (i32.const 0))
  ;; iovec at 0 (ptr, len), bytes written at 8, text at 16 and 48.
  (data (i32.const 16) "main ran after _initialize\n")
  (data (i32.const 48) "main ran without _initialize\n")
  (func (export "_initialize")
    (global.set $initialized (i32.const 1)))
  (func (export "")
    (if (global.get $initialized)
      (then (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 27)))
      (else (i32.store (i32.const 0) (i32.const 48)) (i32.store (i32.const 4) (i32.const 29))))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
