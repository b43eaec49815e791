// MathJax 3 settings for pymdownx.arithmatex (generic mode). MathJax itself is loaded by the reader's
// browser when a page is viewed; building the site fetches nothing.
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true, processEnvironments: true },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex" }
};
document$.subscribe(() => { MathJax.typesetPromise && MathJax.typesetPromise(); });
