// http-js: a wasi:http handler in JavaScript (StarlingMonkey fetch-event). Answers every request
// with 200 "hello from js\n", content-type text/plain.
addEventListener('fetch', (event) =>
  event.respondWith(
    new Response('hello from js\n', {
      status: 200,
      headers: { 'content-type': 'text/plain' },
    }),
  ),
);
