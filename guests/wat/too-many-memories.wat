;; too-many-memories: 17 empty linear memories, one more than skiff lets a guest have; `_start`
;; returns at once. Refused before it runs: "memory count too high".
(module
  (memory 0) (memory 0) (memory 0) (memory 0) (memory 0) (memory 0) (memory 0) (memory 0)
  (memory 0) (memory 0) (memory 0) (memory 0) (memory 0) (memory 0) (memory 0) (memory 0)
  (memory 0)
  (func $_start (export "_start")))
