;; library: a core module that is not a command (no _start); exports add(i32, i32) -> i32.
(module
  (func $add (export "add") (param $a i32) (param $b i32) (result i32)
    (i32.add (local.get $a) (local.get $b))))
