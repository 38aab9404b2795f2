// Starts Swagger UI on /schema/openapi.json. A file, not an inline script: the page's
// Content-Security-Policy allows scripts from this server only.
"use strict";
window.ui = SwaggerUIBundle({
  url: "/schema/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "BaseLayout",
});
