;; calc: a component (written by hand) exporting plain functions and an interface, for
;; `skiff run --invoke` on components (wasmtime's WAVE syntax): add(a: u32, b: u32) -> u32,
;; is-even(n: u32) -> bool, half(x: f64) -> f64, pick(o: option<u32>) -> u32 (the payload, or
;; 0 for none), rank(c: enum {red, green, blue}) -> u32 (the case's index), crash() (traps), and
;; local:calc/ops#mul(a: s64, b: s64) -> s64. Built by guests/tools/componentize --wat.
(component
  (core module $m
    (func (export "add") (param i32 i32) (result i32)
      (i32.add (local.get 0) (local.get 1)))
    (func (export "is-even") (param i32) (result i32)
      (i32.eqz (i32.and (local.get 0) (i32.const 1))))
    (func (export "half") (param f64) (result f64)
      (f64.mul (local.get 0) (f64.const 0.5)))
    (func (export "pick") (param i32 i32) (result i32)
      (select (local.get 1) (i32.const 0) (local.get 0)))
    (func (export "rank") (param i32) (result i32)
      (local.get 0))
    (func (export "crash")
      unreachable)
    (func (export "mul") (param i64 i64) (result i64)
      (i64.mul (local.get 0) (local.get 1))))
  (core instance $i (instantiate $m))
  (type $color' (enum "red" "green" "blue"))
  ;; A type in an exported signature must itself be exported.
  (export $color "color" (type $color'))
  (func (export "add") (param "a" u32) (param "b" u32) (result u32)
    (canon lift (core func $i "add")))
  (func (export "is-even") (param "n" u32) (result bool)
    (canon lift (core func $i "is-even")))
  (func (export "half") (param "x" f64) (result f64)
    (canon lift (core func $i "half")))
  (func (export "pick") (param "o" (option u32)) (result u32)
    (canon lift (core func $i "pick")))
  (func (export "rank") (param "c" $color) (result u32)
    (canon lift (core func $i "rank")))
  (func (export "crash")
    (canon lift (core func $i "crash")))
  (func $mul (param "a" s64) (param "b" s64) (result s64)
    (canon lift (core func $i "mul")))
  (instance $ops (export "mul" (func $mul)))
  (export "local:calc/ops" (instance $ops)))
