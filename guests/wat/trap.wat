;; trap: _start -> outer -> inner, which executes `unreachable`. Built with --debug-names so a
;; backtrace shows the three named frames.
(module
  (memory (export "memory") 1)
  (func $inner
    unreachable)
  (func $outer
    (call $inner))
  (func $_start (export "_start")
    (call $outer)))
