;; reactor: a WASI reactor (`_initialize`, no `_start`) whose functions are called with
;; `skiff run --invoke`. `_initialize` sets the base `add_base` adds, so a call that skipped it
;; gives another answer; the others cover every type wasmtime parses arguments as.
(module
  (global $base (mut i32) (i32.const 0))
  (func (export "_initialize")
    (global.set $base (i32.const 100)))
  (func (export "add_base") (param i32) (result i32)
    (i32.add (global.get $base) (local.get 0)))
  (func (export "wide") (param i64) (result i64)
    (i64.mul (local.get 0) (i64.const 2)))
  (func (export "scale") (param f64 f32) (result f64)
    (f64.mul (local.get 0) (f64.promote_f32 (local.get 1))))
  (func (export "pair") (result i32 f32)
    (i32.const -7) (f32.const 0.5))
  (func (export "nothing")))
