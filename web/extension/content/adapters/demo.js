// Adapter for mailsort's demo mail page (web/demo/). An adapter is all the
// content script knows about a webmail site; supporting Gmail or Outlook on
// the web means one more file like this one, listed before content.js in
// manifest.json (with the site in "matches").
//
// An adapter has:
//   name                    short name, for logs
//   detect()                true on the pages it understands
//   messages()              the messages on the page: [{id, subject, body, element}]
//   container()             the element whose changes mean messages came or went
//   place(element, badge)   puts the label badge into a message's element

(globalThis.mailsortAdapters ??= []).push({
  name: "demo",
  detect: () => document.querySelector("[data-mailsort-demo]") !== null,
  messages: () =>
    [...document.querySelectorAll("article.message[data-id]")].map((element) => ({
      id: element.dataset.id,
      // textContent, not innerText: the text exactly as the mail holds it.
      subject: element.querySelector(".subject").textContent,
      body: element.querySelector(".body").textContent,
      element,
    })),
  container: () => document.querySelector("#messages"),
  place: (element, badge) => element.querySelector(".labels").replaceChildren(badge),
});
