/** The widget's stylesheet, bundled as text (client/build.mjs minifies it). */
declare module "*.css" {
  const text: string;
  export default text;
}
