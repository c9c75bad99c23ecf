;; shared-memory: a p1 command declaring a shared memory (the threads proposal), which skiff
;; leaves off; `_start` returns at once. Refused with the proposal's name, never "invalid".
(module
  (memory (export "memory") 1 1 shared)
  (func (export "_start")))
