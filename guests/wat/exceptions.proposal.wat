;; exceptions: a p1 command using WebAssembly exception handling (try_table/throw, the form
;; clang's -fwasm-exceptions emits today). `_start` throws a tag carrying 42 and catches it,
;; then exits with the caught value minus 40: exit 2 means the exception went where it should.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (tag $oops (param i32))
  (func $thrower (param i32)
    (throw $oops (local.get 0)))
  (func (export "_start")
    (block $caught (result i32)
      (try_table (catch $oops $caught)
        (call $thrower (i32.const 42)))
      (call $proc_exit (i32.const 1))
      (unreachable))
    (call $proc_exit (i32.sub (i32.const 40)))
    (unreachable)))
