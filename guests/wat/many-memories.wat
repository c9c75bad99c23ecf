;; many-memories: 16 linear memories (multi-memory), each grown to 15 MiB a 64 KiB page at a
;; time and every byte written (so the pages are resident): 240 MiB in all, though no memory
;; alone passes 16 MiB. Exit 0 if all of it was granted, proc_exit(3) as soon as a memory.grow
;; answers -1; a host that counts every memory against one budget stops it on the way. 16 is
;; the most memories skiff lets one guest have. Prints nothing.
;; One $fillN per memory: an instruction names its memory by a constant index.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (memory 0)
  (memory 0)
  (memory 0)
  (memory 0)
  (memory 0)
  (memory 0)
  (memory 0)
  (memory 0)
  (memory 0)
  (memory 0)
  (memory 0)
  (memory 0)
  (memory 0)
  (memory 0)
  (memory 0)
  (func $fill0
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 0 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 0 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 0) (i32.const 240)))))
  (func $fill1
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 1 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 1 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 1) (i32.const 240)))))
  (func $fill2
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 2 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 2 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 2) (i32.const 240)))))
  (func $fill3
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 3 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 3 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 3) (i32.const 240)))))
  (func $fill4
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 4 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 4 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 4) (i32.const 240)))))
  (func $fill5
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 5 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 5 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 5) (i32.const 240)))))
  (func $fill6
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 6 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 6 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 6) (i32.const 240)))))
  (func $fill7
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 7 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 7 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 7) (i32.const 240)))))
  (func $fill8
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 8 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 8 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 8) (i32.const 240)))))
  (func $fill9
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 9 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 9 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 9) (i32.const 240)))))
  (func $fill10
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 10 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 10 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 10) (i32.const 240)))))
  (func $fill11
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 11 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 11 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 11) (i32.const 240)))))
  (func $fill12
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 12 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 12 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 12) (i32.const 240)))))
  (func $fill13
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 13 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 13 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 13) (i32.const 240)))))
  (func $fill14
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 14 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 14 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 14) (i32.const 240)))))
  (func $fill15
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow 15 (i32.const 1)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (call $proc_exit (i32.const 3))))
      (memory.fill 15 (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xab) (i32.const 0x10000))
      (br_if $grow (i32.lt_u (memory.size 15) (i32.const 240)))))
  (func $_start (export "_start")
    (call $fill0)
    (call $fill1)
    (call $fill2)
    (call $fill3)
    (call $fill4)
    (call $fill5)
    (call $fill6)
    (call $fill7)
    (call $fill8)
    (call $fill9)
    (call $fill10)
    (call $fill11)
    (call $fill12)
    (call $fill13)
    (call $fill14)
    (call $fill15)
    (call $proc_exit (i32.const 0))))
