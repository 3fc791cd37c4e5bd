// Shown in place of the OBS source when its key is wrong or missing: nothing on stream,
// one line in the browser console (OBS: right-click the source → Interact → DevTools).
console.error('dropwire: this OBS source URL has a wrong or missing ?key=. Copy the OBS URL again from the control panel.');
