;; stack-overflow: unbounded recursion from _start (the host must trap with a stack overflow).
(module
  (memory (export "memory") 1)
  (func $recurse (param $n i32) (result i32)
    (i32.add
      (call $recurse (i32.add (local.get $n) (i32.const 1)))
      (i32.const 1)))
  (func $_start (export "_start")
    (drop (call $recurse (i32.const 0)))))
