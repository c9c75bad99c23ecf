;; loop: a WASI command whose _start spins forever (for timeout / epoch-interruption tests).
(module
  (memory (export "memory") 1)
  (func $_start (export "_start")
    (loop $spin
      (br $spin))))
