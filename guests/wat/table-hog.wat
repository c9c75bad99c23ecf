;; table-hog: one table.grow of 200M funcref slots (1.6 GB of host memory at 8 bytes a slot in
;; wasmtime 48), then proc_exit(0) if it was granted, 3 if table.grow answered -1. A host that
;; counts tables against the guest's memory budget stops it at the grow. Prints nothing.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (func $_start (export "_start")
    (if (i32.eq (table.grow $t (ref.null func) (i32.const 200000000)) (i32.const -1))
      (then (call $proc_exit (i32.const 3))))
    ;; Write the last slot: the table really is that large.
    (table.set $t (i32.const 200000000) (ref.null func))
    (call $proc_exit (i32.const 0))))
