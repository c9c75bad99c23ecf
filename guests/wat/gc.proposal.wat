;; gc: a p1 command using WasmGC types, as Kotlin/Wasm, Dart and OCaml compilers emit. `_start`
;; allocates a struct and an array on the GC heap and exits with a value read back from each:
;; exit 7 (3 + 4).
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (type $point (struct (field $x i32) (field $y (mut i32))))
  (type $row (array (mut i32)))
  (func (export "_start")
    (local $p (ref $point))
    (local $r (ref $row))
    (local.set $p (struct.new $point (i32.const 3) (i32.const 0)))
    (local.set $r (array.new $row (i32.const 4) (i32.const 10)))
    (call $proc_exit
      (i32.add
        (struct.get $point $x (local.get $p))
        (array.get $row (local.get $r) (i32.const 9))))
    (unreachable)))
