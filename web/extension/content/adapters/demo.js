// Adapter for mailsort's demo mail page (web/demo/). An adapter is all the
// content script knows about a webmail site; supporting another site means
// one more file like this one, listed in sites.js.
//
// An adapter has:
//   name                    short name, for logs and the service worker's side of the site
//   canFile                 whether its messages can be filed (webmail/<name>.js moves them)
//   detect()                true on the pages it understands
//   messages()              the messages on the page: [{key, subject, element}, plus
//                           either {body} (text shown in the page) or {mbox, uid}
//                           (the service worker fetches the message itself)]
//   container()             the element whose changes mean messages came or went
//   place(element, badge)   puts the label badge into a message's element

(globalThis.mailsortAdapters ??= []).push({
  name: "demo",
  canFile: false,
  detect: () => document.querySelector("[data-mailsort-demo]") !== null,
  messages: () =>
    [...document.querySelectorAll("article.message[data-id]")].map((element) => ({
      key: element.dataset.id,
      // textContent, not innerText: the text exactly as the mail holds it.
      subject: element.querySelector(".subject").textContent,
      body: element.querySelector(".body").textContent,
      element,
    })),
  container: () => document.querySelector("#messages"),
  place: (element, badge) => element.querySelector(".labels").replaceChildren(badge),
});
