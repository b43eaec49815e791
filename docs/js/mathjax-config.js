// MathJax 3 settings for pymdownx.arithmatex (generic mode). MathJax itself (js/mathjax/tex-svg.js,
// SVG output with its fonts inside) is copied into the site when it is built (tools/mkdocs_hooks.py,
// from the django-static-mathjax wheel of the docs extra): neither building nor viewing fetches anything.
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true, processEnvironments: true },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex" },
  svg: { fontCache: "global" }
};
document$.subscribe(() => { MathJax.typesetPromise && MathJax.typesetPromise(); });
