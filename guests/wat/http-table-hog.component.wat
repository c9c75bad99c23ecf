;; http-table-hog: a wasi:http handler (a component, written by hand) whose every request does
;; one table.grow of 200M funcref slots (1.6 GB of host memory at 8 bytes a slot) and returns
;; without answering. A host that counts tables against the guest's memory budget traps it at
;; the grow (500, "memory limit"); one that does not pays the 1.6 GB, then answers 502 (no
;; response). Built by guests/tools/componentize --wat (wabt reads only core modules).
(component
  (import "wasi:http/types@0.2.12" (instance $types
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))))
  (alias export $types "incoming-request" (type $request))
  (alias export $types "response-outparam" (type $outparam))
  (core module $hog
    (table $t 1 funcref)
    (func (export "handle") (param i32 i32)
      (drop (table.grow $t (ref.null func) (i32.const 200000000)))))
  (core instance $hog (instantiate $hog))
  (func $handle (param "request" (own $request)) (param "response-out" (own $outparam))
    (canon lift (core func $hog "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.12" (instance $handler)))
